import { ForbiddenError, ServiceUnavailableError, UnauthorizedError } from '@basalt/errors';
import { createLogger } from '@basalt/log';
import type { Authenticator } from '../../services/api/src/auth';
import {
  KeystoneAuthenticator,
  type KeystoneAuthOptions,
} from '../../services/api/src/keystone-authenticator';
import { CountingProxy, KeystoneFixture, type KeystoneUser } from '../support/keystone';

/** Validations (not token issues) that reached Keystone. */
const VALIDATIONS = /^GET \/v3\/auth\/tokens/;
const ISSUES = /^POST \/v3\/auth\/tokens/;

describe('KeystoneAuthenticator against a real Keystone', () => {
  let keystone: KeystoneFixture;
  let proxy: CountingProxy;
  let service: KeystoneUser;
  let alice: KeystoneUser;
  let bob: KeystoneUser;
  let boss: KeystoneUser;
  const logLines: string[] = [];
  const log = createLogger({ name: 'test', destination: { write: (line: string) => logLines.push(line) } });

  const authenticator = (overrides: Partial<KeystoneAuthOptions> = {}) =>
    new KeystoneAuthenticator(
      {
        authUrl: proxy.url,
        wwwAuthenticateUri: keystone.url,
        username: service.name,
        password: service.password,
        projectName: 'service',
        userDomainName: 'Default',
        projectDomainName: 'Default',
        cacheSize: 100,
        cacheTimeMs: 300_000,
        timeoutMs: 5_000,
        ...overrides,
      },
      log,
    );
  const refusal = (a: Authenticator, token: string | undefined) => a.authenticate(token).catch((e) => e);

  beforeAll(async () => {
    keystone = await KeystoneFixture.start();
    proxy = new CountingProxy(keystone.url);
    await proxy.start();
    service = await keystone.createServiceUser();
    alice = await keystone.createUser('member');
    bob = await keystone.createUser('member');
    boss = await keystone.createUser('admin');
  }, 300_000);
  afterAll(async () => {
    await proxy?.stop();
    await keystone?.cleanup();
  }, 60_000);

  test("a valid token gives its user, project and effective roles; another project's token its own", async () => {
    const a = authenticator();
    const caller = await a.authenticate(await keystone.token(alice));
    expect(caller).toEqual({
      userId: alice.id,
      projectId: alice.projectId,
      roles: expect.arrayContaining(['member', 'reader']),
      isAdmin: false,
    });
    expect(caller.roles).not.toContain('admin');
    const other = await a.authenticate(await keystone.token(bob));
    expect(other).toMatchObject({ userId: bob.id, projectId: bob.projectId, isAdmin: false });
    expect(other.projectId).not.toBe(caller.projectId);
    expect(await a.authenticate(await keystone.token(boss))).toMatchObject({
      projectId: boss.projectId,
      isAdmin: true,
    });
    expect(a.challenge()).toBe(`Keystone uri="${keystone.url}"`);
  });

  test('missing, garbage and revoked tokens are refused as unauthorized', async () => {
    const a = authenticator();
    expect(await refusal(a, undefined)).toBeInstanceOf(UnauthorizedError);
    expect(await refusal(a, '')).toBeInstanceOf(UnauthorizedError);
    expect(await refusal(a, 'gAAAAAgarbage')).toBeInstanceOf(UnauthorizedError);
    const revoked = await keystone.token(alice);
    await keystone.revoke(revoked);
    expect(await refusal(a, revoked)).toBeInstanceOf(UnauthorizedError);
  });

  test('a token without a project is forbidden', async () => {
    const a = authenticator();
    const res = await fetch(`${keystone.url}/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { id: alice.id, password: alice.password } } },
        },
      }),
    });
    expect(res.status).toBe(201);
    expect(await refusal(a, res.headers.get('x-subject-token') as string)).toBeInstanceOf(ForbiddenError);
  });

  test('a cached token costs no second round trip, and concurrent checks of a new one share one', async () => {
    const a = authenticator();
    const token = await keystone.token(alice);
    const before = proxy.count(VALIDATIONS);
    await a.authenticate(token);
    expect(proxy.count(VALIDATIONS)).toBe(before + 1);
    for (let i = 0; i < 20; i++) await a.authenticate(token);
    expect(proxy.count(VALIDATIONS)).toBe(before + 1);

    const fresh = await keystone.token(bob);
    const callers = await Promise.all(Array.from({ length: 10 }, () => a.authenticate(fresh)));
    expect(new Set(callers.map((c) => c.userId))).toEqual(new Set([bob.id]));
    expect(proxy.count(VALIDATIONS)).toBe(before + 2);
  });

  test('the cache is bounded: the least recently used token is validated again', async () => {
    const a = authenticator({ cacheSize: 2 });
    const [t1, t2, t3] = await Promise.all([
      keystone.token(alice),
      keystone.token(bob),
      keystone.token(boss),
    ]);
    const before = proxy.count(VALIDATIONS);
    await a.authenticate(t1);
    await a.authenticate(t2);
    await a.authenticate(t3); // evicts t1
    expect(proxy.count(VALIDATIONS)).toBe(before + 3);
    await a.authenticate(t3);
    await a.authenticate(t2);
    expect(proxy.count(VALIDATIONS)).toBe(before + 3);
    await a.authenticate(t1);
    expect(proxy.count(VALIDATIONS)).toBe(before + 4);
  });

  test('a cached answer lasts token_cache_time: a revoked token is refused once it runs out', async () => {
    const a = authenticator({ cacheTimeMs: 1_000 });
    const token = await keystone.token(alice);
    await a.authenticate(token);
    await keystone.revoke(token);
    const deadline = Date.now() + 15_000;
    let refused: unknown;
    while (!refused && Date.now() < deadline) {
      refused = await a.authenticate(token).then(
        () => undefined,
        (e) => e,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused).toBeInstanceOf(UnauthorizedError);
  });

  test("a cached answer never outlives the token's expiry", async () => {
    const a = authenticator({ cacheTimeMs: 300_000 });
    const { token, expiresAt } = await keystone.shortLivedToken(alice, 4);
    expect((await a.authenticate(token)).userId).toBe(alice.id);
    const deadline = Date.now() + 20_000;
    let refusedAt = 0;
    while (!refusedAt && Date.now() < deadline) {
      const outcome = await a.authenticate(token).then(
        () => undefined,
        (e) => e,
      );
      if (outcome instanceof UnauthorizedError) refusedAt = Date.now();
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(refusedAt).toBeGreaterThan(0);
    // fernet keeps whole seconds: the token may end up to a second before the credential asked
    expect(refusedAt).toBeGreaterThanOrEqual(expiresAt - 1_000);
  }, 30_000);

  test('a service token Keystone refuses is replaced, and the check goes on', async () => {
    const a = authenticator();
    await a.authenticate(await keystone.token(alice));
    const serviceToken = proxy.authTokens[proxy.requests.findLastIndex((r) => VALIDATIONS.test(r))];
    await keystone.revoke(serviceToken as string);
    const issuesBefore = proxy.count(ISSUES);
    expect((await a.authenticate(await keystone.token(bob))).userId).toBe(bob.id);
    expect(proxy.count(ISSUES)).toBe(issuesBefore + 1);
    const last = proxy.authTokens[proxy.requests.findLastIndex((r) => VALIDATIONS.test(r))];
    expect(last).not.toBe(serviceToken);
  });

  test('Keystone unreachable or refusing the service user is a retryable unavailability, not a 401', async () => {
    const token = await keystone.token(alice);
    const wrong = await refusal(authenticator({ password: 'not-the-password' }), token);
    expect(wrong).toBeInstanceOf(ServiceUnavailableError);
    expect(wrong.retryable).toBe(true);

    const a = authenticator();
    await proxy.stop();
    try {
      const down = await refusal(a, token);
      expect(down).toBeInstanceOf(ServiceUnavailableError);
      expect(down.retryable).toBe(true);
    } finally {
      await proxy.start();
    }
    expect((await a.authenticate(token)).userId).toBe(alice.id);
  });

  test('neither tokens nor the service password reach the log', async () => {
    const a = authenticator({ password: 'not-the-password' });
    const token = await keystone.token(alice);
    await refusal(a, token);
    const text = logLines.join('');
    expect(text).toMatch(/Keystone refused the service user a token/);
    for (const secret of [token, service.password, 'not-the-password', alice.password]) {
      expect(text).not.toContain(secret);
    }
  });
});
