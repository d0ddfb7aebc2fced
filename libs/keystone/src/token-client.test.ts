import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeystoneTokenClient, KeystoneTokenError } from './token-client';

/** A local endpoint answering POST /auth/tokens as Keystone does, counting the authentications. */
class TokenEndpoint {
  issued = 0;
  status = 201;
  lifetimeMs = 3_600_000;
  bodies: unknown[] = [];
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk) => {
        text += chunk;
      });
      req.on('end', () => {
        this.bodies.push(JSON.parse(text));
        if (this.status !== 201) {
          res.writeHead(this.status).end();
          return;
        }
        this.issued += 1;
        const expires = new Date(Date.now() + this.lifetimeMs).toISOString();
        res
          .writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': `token-${this.issued}` })
          .end(JSON.stringify({ token: { expires_at: expires } }));
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v3/`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('KeystoneTokenClient', () => {
  let keystone: TokenEndpoint;
  let client: KeystoneTokenClient;
  const auth = {
    username: 'nova',
    password: 's3cret',
    projectName: 'service',
    userDomainName: 'Default',
    projectDomainName: 'Default',
    timeoutMs: 5_000,
  };
  beforeEach(async () => {
    keystone = new TokenEndpoint();
    client = new KeystoneTokenClient({ ...auth, authUrl: await keystone.start() });
  });
  afterEach(() => keystone.stop());

  test('a password authentication scoped to the project, shared by concurrent askers and kept', async () => {
    const tokens = await Promise.all([client.token(), client.token(), client.token()]);
    expect(tokens).toEqual(['token-1', 'token-1', 'token-1']);
    expect(await client.token()).toBe('token-1');
    expect(keystone.issued).toBe(1);
    expect(keystone.bodies[0]).toEqual({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'nova', domain: { name: 'Default' }, password: 's3cret' } },
        },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    });
  });

  test('a refused token is renewed once, however many callers saw it refused', async () => {
    const first = await client.token();
    expect(await Promise.all([client.token(first), client.token(first)])).toEqual(['token-2', 'token-2']);
    // a late caller still holding the old token does not renew the new one
    expect(await client.token(first)).toBe('token-2');
    expect(keystone.issued).toBe(2);
  });

  test('a token near its expiry is renewed before use', async () => {
    keystone.lifetimeMs = 60_000;
    await client.token();
    expect(await client.token()).toBe('token-2');
  });

  test('a refusal is final, an unreachable Keystone retryable, and neither names the password', async () => {
    keystone.status = 401;
    const refused = await client.token().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KeystoneTokenError);
    expect(refused).toMatchObject({ status: 401, retryable: false });
    expect(String((refused as Error).message)).not.toContain('s3cret');
    // a refusal is not remembered: the next ask authenticates again
    keystone.status = 201;
    expect(await client.token()).toBe('token-1');
    client = new KeystoneTokenClient({ ...auth, authUrl: 'http://127.0.0.1:1/v3' });
    const unreachable = await client.token().catch((e: unknown) => e);
    expect(unreachable).toMatchObject({ status: undefined, retryable: true });
  });
});
