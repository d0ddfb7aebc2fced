import type { AddressInfo } from 'node:net';
import { QuotaExceededError } from '@basalt/errors';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Authenticator } from './auth';
import { buildComputeApp } from './compute-app';
import { createHttpApp } from './http';
import { Policy } from './policy';
import { POLICY_DEFAULTS } from './policy-defaults';
import { registerPolicy } from './policy-hook';
import { VOLUME_ROUTE_POLICIES } from './policy-routes';
import { RateLimiter } from './rate-limit';
import { buildVolumeApp } from './volume-app';
import type { VolumeRouteDeps } from './volume-routes';

const log = pino({ level: 'silent' });
const policy = new Policy(POLICY_DEFAULTS);
/** `X-Auth-Token: role:project` names the caller. */
const authenticator: Authenticator = {
  challenge: () => undefined,
  async authenticate(token) {
    const [role, projectId] = (token ?? '').split(':') as [string, string];
    return { userId: `${role}-user`, projectId, roles: [role], isAdmin: role === 'admin' };
  },
};
const unlimited = new RateLimiter({ ratePerSec: 0, burst: 1 });

const serving: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(serving.splice(0).map((app) => app.close()));
});

/** Requests over a loopback port: status, headers and the JSON body; the app is closed after the test. */
async function serve(app: FastifyInstance) {
  serving.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return async (method: string, path: string, options: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(options.token ? { 'x-auth-token': options.token } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}

/** The real volume app, its handlers' dependencies answering a fixed volume. */
async function volumeApp(overrides: Record<string, string> = {}) {
  const volume = { id: '11111111-1111-4111-8111-111111111111', projectId: 'p1' };
  const deps = {
    api: {
      get: async () => volume,
      delete: async () => undefined,
      extend: async () => undefined,
      resetStatus: async () => undefined,
    },
    volumes: { list: async () => [] },
    attachments: { live: async () => [] },
    quotas: { limits: async () => ({ volumes: 1, gigabytes: 1 }), set: async () => undefined },
    quotaDefaults: { volumes: 1, gigabytes: 1 },
    maxLimit: 10,
    baseUrl: () => 'http://x',
  } as unknown as Omit<VolumeRouteDeps, 'context'>;
  const app = await buildVolumeApp(
    {
      log,
      bodyLimit: 4096,
      authenticator,
      policy: new Policy(POLICY_DEFAULTS, overrides),
      rateLimiter: unlimited,
      ready: async () => true,
    },
    deps,
  );
  return { volume, request: await serve(app) };
}

describe('every route checks its rule', () => {
  test('a route the table does not name stops the app from starting', async () => {
    const app = createHttpApp(log, 4096);
    registerPolicy(app, policy, VOLUME_ROUTE_POLICIES);
    expect(() => app.get('/v3/:project_id/backdoor', async () => 'open')).toThrow(
      'no policy rule for GET /v3/:project_id/backdoor: add it to the route table',
    );
    // outside the prefixes (versions, health) no caller is needed, so no rule either
    expect(() => app.get('/healthz', async () => 'ok')).not.toThrow();
  });

  test('a table naming a rule the policy does not know is refused', () => {
    const app = createHttpApp(log, 4096);
    expect(() =>
      registerPolicy(app, policy, { prefixes: ['/v3'], routes: { 'GET /x': 'volume:no_such_rule' } }),
    ).toThrow('route table names unknown policy rule "volume:no_such_rule"');
  });

  test('readers read, members write within their project, admin-only actions are refused to both', async () => {
    const { volume, request } = await volumeApp();
    const call = (role: string, method: string, path: string, body?: unknown) =>
      request(method, `/v3/p1${path}`, { token: `${role}:p1`, body });
    const v = `/volumes/${volume.id}`;
    const forbidden = (rule: string) => ({
      forbidden: { code: 403, message: `Policy doesn't allow ${rule} to be performed.` },
    });

    for (const role of ['reader', 'member', 'admin']) {
      expect((await call(role, 'GET', '/volumes')).status).toBe(200);
      expect((await call(role, 'GET', '/os-quota-sets/p1')).status).toBe(200);
    }
    const reader = await call('reader', 'DELETE', v);
    expect([reader.status, reader.body]).toEqual([403, forbidden('volume:delete')]);
    expect((await call('reader', 'POST', `${v}/action`, { 'os-extend': { new_size: 2 } })).body).toEqual(
      forbidden('volume:extend'),
    );
    expect((await call('member', 'DELETE', v)).status).toBe(202);
    expect((await call('member', 'POST', `${v}/action`, { 'os-extend': { new_size: 2 } })).status).toBe(202);

    const reset = { 'os-reset_status': { status: 'available' } };
    expect((await call('member', 'POST', `${v}/action`, reset)).body).toEqual(
      forbidden('volume_extension:volume_admin_actions:reset_status'),
    );
    expect((await call('admin', 'POST', `${v}/action`, reset)).status).toBe(202);
    expect((await call('member', 'PUT', '/os-quota-sets/p1', { quota_set: { volumes: 5 } })).body).toEqual(
      forbidden('volume_extension:quotas:update'),
    );
    // another project's quotas: the target is the project in the path
    expect((await call('member', 'GET', '/os-quota-sets/p2')).body).toEqual(
      forbidden('volume_extension:quotas:show'),
    );
    expect((await call('admin', 'GET', '/os-quota-sets/p2')).status).toBe(200);
    // an action no rule names is refused before any handler, whatever the key
    for (const action of ['os-nothing', 'constructor', '__proto__']) {
      const res = await call('admin', 'POST', `${v}/action`, JSON.parse(`{"${action}": {}}`));
      expect(res.status).toBe(400);
    }
  });

  test('an override changes who may: members may no longer create, readers may delete', async () => {
    const { volume, request } = await volumeApp({
      'volume:create': 'role:admin',
      'volume:delete': 'role:reader',
    });
    const create = await request('POST', '/v3/p1/volumes', {
      token: 'member:p1',
      body: { volume: { size: 1 } },
    });
    expect(create.status).toBe(403);
    expect((await request('DELETE', `/v3/p1/volumes/${volume.id}`, { token: 'reader:p1' })).status).toBe(202);
  });
});

describe('the compute API checks Nova’s rules through the same policy', () => {
  test('readers list flavors and servers but create nothing; no server of theirs is touched', async () => {
    const compute = buildComputeApp({ log, bodyLimit: 4096, authenticator, policy, rateLimiter: unlimited }, {
      api: { list: async () => [] },
      instances: { list: async () => [] },
      maxLimit: 10,
      nameTemplate: 'instance-%08x',
      baseUrl: () => 'http://x',
    } as never);
    const request = await serve(compute);
    const as = (role: string) => ({ token: `${role}:p1` });
    expect((await request('GET', '/v2.1/p1/flavors', as('reader'))).status).toBe(200);
    const create = await request('POST', '/v2.1/p1/servers', {
      ...as('reader'),
      body: { server: { name: 'x' } },
    });
    expect([create.status, create.body]).toEqual([
      403,
      {
        forbidden: {
          code: 403,
          message: "Policy doesn't allow os_compute_api:servers:create to be performed.",
        },
      },
    ]);
    const attach = await request('POST', '/v2.1/p1/servers/s1/os-volume_attachments', {
      ...as('reader'),
      body: { volumeAttachment: { volumeId: 'v' } },
    });
    expect(attach.body.forbidden.message).toBe(
      "Policy doesn't allow os_compute_api:os-volumes-attachments:create to be performed.",
    );
    const reboot = await request('POST', '/v2.1/p1/servers/s1/action', {
      ...as('reader'),
      body: { reboot: { type: 'HARD' } },
    });
    expect(reboot.status).toBe(403);
  });
});

describe('request rate and body size', () => {
  test('the token bucket lets a burst through, then refuses with the wait until the next token', () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSec: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => limiter.take('a'))).toEqual([0, 0, 0]);
    expect(limiter.take('a')).toBeCloseTo(0.5);
    // another client has its own bucket
    expect(limiter.take('b')).toBe(0);
    now = 0.5;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeCloseTo(0.5);
    now = 100;
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([0, 0, 0, expect.any(Number)]);
  });

  test('memory stays bounded under a flood of new clients', () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSec: 1, burst: 1, maxClients: 10, now: () => now });
    for (let i = 0; i < 1000; i++) {
      now += 0.001;
      limiter.take(`client-${i}`);
    }
    expect((limiter as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(20);
  });

  test('over the limit: 429 overLimit with Retry-After, per token, and before the body is read', async () => {
    const app = createHttpApp(log, 1024, new RateLimiter({ ratePerSec: 0.1, burst: 2 }));
    app.post('/echo', async (req) => req.body);
    const request = await serve(app);
    const send = (token: string, body: object = { a: 1 }) => request('POST', '/echo', { token, body });
    expect((await send('t1')).status).toBe(200);
    expect((await send('t1')).status).toBe(200);
    const refused = await send('t1', { big: 'x'.repeat(5000) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(refused.headers.get('x-openstack-request-id')).toMatch(/^req-/);
    expect(refused.body).toEqual({
      overLimit: { code: 429, message: 'This request was rate-limited.', retryAfter: '10' },
    });
    expect((await send('t2')).status).toBe(200);
  });

  test("a body over the limit is Cinder's 413 overLimit", async () => {
    const app = createHttpApp(log, 1024);
    app.post('/echo', async (req) => req.body);
    const res = await (await serve(app))('POST', '/echo', { body: { big: 'x'.repeat(2000) } });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ overLimit: { code: 413, message: 'Request is too large.' } });
    expect(res.headers.get('retry-after')).toBeNull();
  });

  test("over quota is Cinder's QuotaError: 413 overLimit with Retry-After 0, as a header and in the body", async () => {
    const app = createHttpApp(log, 1024);
    const message =
      "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'.";
    app.post('/volumes', async () => {
      throw new QuotaExceededError(message);
    });
    const res = await (await serve(app))('POST', '/volumes', { body: {} });
    expect(res.status).toBe(413);
    expect(res.headers.get('retry-after')).toBe('0');
    expect(res.body).toEqual({ overLimit: { code: 413, message, retryAfter: '0' } });
  });
});
