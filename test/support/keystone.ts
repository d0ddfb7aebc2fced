import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { ROOT } from './processes';
import { uniqueName } from './rpc';

const run = promisify(execFile);

/** The tests' Keystone: a port and database of their own, apart from a development stack's. */
export const KEYSTONE_PORT = Number(process.env.BASALT_TEST_KEYSTONE_PORT ?? 35358);
const KEYSTONE_DB = process.env.BASALT_TEST_KEYSTONE_DB ?? 'basalt_test_keystone';

export interface KeystoneUser {
  readonly id: string;
  readonly name: string;
  readonly password: string;
  readonly projectId: string;
  readonly projectName: string;
}

/**
 * A real Keystone (Debian's package, started by `./stack.sh keystone`, which returns at once when
 * it already runs), and the projects, users, regions and endpoints one test file makes in it:
 * every name is unique, and `cleanup()` deletes all of them, whatever the tests did.
 */
export class KeystoneFixture {
  private readonly created: string[] = [];
  private admin?: string;

  private constructor(
    readonly url: string,
    private readonly adminPassword: string,
  ) {}

  static async start(): Promise<KeystoneFixture> {
    const dir = `/var/lib/basalt-keystone/${KEYSTONE_PORT}`;
    await run(`${ROOT}/stack.sh`, ['keystone'], {
      timeout: 300_000,
      env: { ...process.env, KEYSTONE_PORT: String(KEYSTONE_PORT), KEYSTONE_DB, KEYSTONE_DIR: dir },
    });
    const openrc = readFileSync(`${dir}/admin-openrc`, 'utf8');
    const password = /^export OS_PASSWORD=(.*)$/m.exec(openrc)?.[1];
    if (!password) throw new Error(`no OS_PASSWORD in ${dir}/admin-openrc`);
    return new KeystoneFixture(`http://127.0.0.1:${KEYSTONE_PORT}/v3`, password);
  }

  get adminCredentials() {
    return { username: 'admin', password: this.adminPassword, project: 'admin' };
  }

  /** A project of its own with a user holding `role` in it (admin implies member, member reader). */
  async createUser(role: 'member' | 'admin' = 'member'): Promise<KeystoneUser> {
    const projectName = uniqueName('basalt_proj');
    const project = await this.create('projects', 'project', { name: projectName, domain_id: 'default' });
    return this.createUserIn(project, projectName, role);
  }

  /** A user with role service in project service: what Basalt validates tokens as. */
  async createServiceUser(): Promise<KeystoneUser> {
    return this.createUserIn(await this.find('projects', 'service'), 'service', 'service');
  }

  private async createUserIn(project: string, projectName: string, role: string): Promise<KeystoneUser> {
    const name = uniqueName('basalt_user');
    const password = uniqueName('pw');
    const user = await this.create('users', 'user', { name, password, domain_id: 'default' });
    const roleId = await this.find('roles', role);
    await this.call('PUT', `/projects/${project}/users/${user}/roles/${roleId}`, undefined, [204]);
    return { id: user, name, password, projectId: project, projectName };
  }

  /** A project-scoped token of `user`, by password. */
  async token(user: KeystoneUser): Promise<string> {
    return this.issue({
      identity: {
        methods: ['password'],
        password: { user: { id: user.id, password: user.password } },
      },
      scope: { project: { id: user.projectId } },
    });
  }

  /**
   * A token that expires within `seconds`: Keystone caps a token made from an application
   * credential at the credential's own expiry.
   */
  async shortLivedToken(user: KeystoneUser, seconds: number): Promise<{ token: string; expiresAt: number }> {
    const own = await this.token(user);
    const expiresAt = new Date(Date.now() + seconds * 1000);
    const created = await this.call(
      'POST',
      `/users/${user.id}/application_credentials`,
      {
        application_credential: {
          name: uniqueName('cred'),
          expires_at: expiresAt.toISOString().slice(0, 19),
        },
      },
      [201],
      own,
    );
    const credential = created.body.application_credential as { id: string; secret: string };
    const token = await this.issue({
      identity: {
        methods: ['application_credential'],
        application_credential: { id: credential.id, secret: credential.secret },
      },
    });
    return { token, expiresAt: expiresAt.getTime() };
  }

  /** Revokes a token, as its owner's logout does. */
  async revoke(token: string): Promise<void> {
    await this.call('DELETE', '/auth/tokens', undefined, [204], undefined, { 'X-Subject-Token': token });
  }

  /**
   * A region of its own holding Basalt's endpoints (volumev3 and block-storage at `volumeUrl`,
   * image at `imageUrl`): each test stack listens on its own port, so a client picks its
   * endpoints with the region.
   */
  async registerRegion(volumeUrl: string, imageUrl?: string): Promise<string> {
    const region = uniqueName('basalt_region');
    await this.call('POST', '/regions', { region: { id: region } }, [201]);
    this.created.push(`/regions/${region}`);
    for (const [type, name] of [
      ['volumev3', 'cinderv3'],
      ['block-storage', 'cinder'],
    ] as const) {
      const service = await this.service(type, name);
      for (const iface of ['public', 'internal']) {
        await this.create('endpoints', 'endpoint', {
          service_id: service,
          region_id: region,
          interface: iface,
          url: `${volumeUrl}/v3/%(project_id)s`,
        });
      }
    }
    if (imageUrl) {
      const image = await this.service('image', 'glance');
      await this.create('endpoints', 'endpoint', {
        service_id: image,
        region_id: region,
        interface: 'public',
        url: imageUrl,
      });
    }
    return region;
  }

  /** Deletes what this fixture created, newest first; one failure does not stop the rest. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    for (const path of this.created.splice(0).reverse()) {
      await this.call('DELETE', path, undefined, [204, 404]).catch((e) => errors.push(String(e)));
    }
    if (errors.length > 0) throw new Error(`Keystone cleanup: ${errors.join('; ')}`);
  }

  private async service(type: string, name: string): Promise<string> {
    const found = await this.call('GET', `/services?type=${type}`, undefined, [200]);
    const existing = (found.body.services as { id: string }[])[0];
    if (existing) return existing.id;
    // shared by every test region, so left in place (cleanup removes only the endpoints)
    const made = await this.call('POST', '/services', { service: { type, name } }, [201]);
    return made.body.service.id;
  }

  private async issue(auth: unknown): Promise<string> {
    const res = await fetch(`${this.url}/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth }),
    });
    if (res.status !== 201) throw new Error(`Keystone refused a token: ${res.status} ${await res.text()}`);
    return res.headers.get('x-subject-token') as string;
  }

  private async adminToken(): Promise<string> {
    this.admin ??= await this.issue({
      identity: {
        methods: ['password'],
        password: { user: { name: 'admin', domain: { id: 'default' }, password: this.adminPassword } },
      },
      scope: { project: { name: 'admin', domain: { id: 'default' } } },
    });
    return this.admin;
  }

  private async create(collection: string, kind: string, body: Record<string, unknown>): Promise<string> {
    const res = await this.call('POST', `/${collection}`, { [kind]: body }, [201]);
    const id = res.body[kind].id as string;
    this.created.push(`/${collection}/${id}`);
    return id;
  }

  private async find(collection: string, name: string): Promise<string> {
    const res = await this.call('GET', `/${collection}?name=${encodeURIComponent(name)}`, undefined, [200]);
    const found = (res.body[collection] as { id: string }[])[0];
    if (!found) throw new Error(`Keystone has no ${collection} named ${name}`);
    return found.id;
  }

  private async call(
    method: string,
    path: string,
    body: unknown,
    expected: number[],
    token?: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        'X-Auth-Token': token ?? (await this.adminToken()),
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!expected.includes(res.status)) throw new Error(`Keystone ${method} ${path}: ${res.status} ${text}`);
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
}

/**
 * An HTTP proxy in front of Keystone that counts what passes (method and path), and can be shut,
 * so that a test sees how many round trips the API made and what it does when Keystone is gone.
 */
export class CountingProxy {
  readonly requests: string[] = [];
  /** The X-Auth-Token of each request, in order. */
  readonly authTokens: (string | undefined)[] = [];
  private server?: Server;
  private port = 0;

  constructor(private readonly target: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/v3`;
  }

  count(pattern: RegExp): number {
    return this.requests.filter((r) => pattern.test(r)).length;
  }

  async start(): Promise<void> {
    const target = new URL(this.target);
    const server = createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      this.authTokens.push(req.headers['x-auth-token'] as string | undefined);
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Closes the port (connections refused from now on); `start()` opens it again on the same one. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Glance's version document and nothing else, on a port of its own: python-openstackclient
 * version-discovers the catalog's image service on every `volume create`, and the api process
 * serves no image API yet.
 */
export async function startImageVersions(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => {
    const href = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;
    res.writeHead(300, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({ versions: [{ id: 'v2.9', status: 'CURRENT', links: [{ rel: 'self', href }] }] }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
