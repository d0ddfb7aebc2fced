import fc from 'fast-check';
import { request } from '../support/http';
import { VolumeStack } from '../support/stack';

/**
 * Hostile input never hurts the API: random bodies (JSON of any shape, near-miss Cinder bodies,
 * bytes that are not JSON), query strings and headers on every route of the real api process.
 * No answer is a 5xx and the process stays up and ready. The runs are bounded so the whole file
 * takes well under a minute; a failure prints the smallest request that caused it.
 */
describe('the API under random input', () => {
  // no rate limit here: the point is what each request does, not how many there are
  const stack = new VolumeStack({ extraEnv: { BASALT__API__RATE_LIMIT: '0', BASALT__QUOTA__VOLUMES: '5' } });
  const token = 'fuzzer:fuzzproj';
  let routes: { method: string; path: string }[] = [];
  let volumeId = '';

  beforeAll(async () => {
    await stack.start();
    const doc = (await request(`${stack.volumeUrl}/openapi.json`)).body;
    routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
    );
    const created = await request(`${stack.volumeUrl}/v3/fuzzproj/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1 } },
    });
    volumeId = created.body.volume.id;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 40,
  });
  const nasty = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constantFrom(
      '',
      '..',
      '%00',
      '%2e%2e%2f',
      'null',
      '-1',
      '0',
      '1e400',
      'constructor',
      '__proto__',
      'a'.repeat(300),
    ),
    fc.uuid(),
  );
  const anything = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(2 ** 31, 2 ** 53, -1, 0, 1.5, '1', ' 1', '1 ', '0x10', true, null, [], {}, '\u0000'),
  );
  /** Cinder-shaped bodies with wrong values, and bodies of any shape. */
  const body = fc.oneof(
    fc.record({
      volume: fc.dictionary(
        fc.constantFrom(
          'size',
          'name',
          'description',
          'display_name',
          'availability_zone',
          'volume_type',
          'metadata',
          'x',
        ),
        anything,
      ),
    }),
    fc.dictionary(
      fc.constantFrom('os-extend', 'os-reset_status', 'os-nothing', 'constructor', '__proto__'),
      fc.oneof(anything, fc.dictionary(fc.constantFrom('new_size', 'status', 'attach_status'), anything)),
    ),
    fc.record({
      quota_set: fc.dictionary(fc.constantFrom('volumes', 'gigabytes', 'id', 'snapshots', 'x'), anything),
    }),
    anything,
  );
  const raw = fc.oneof(
    body.map((b) => JSON.stringify(b)),
    fc.string({ maxLength: 60 }),
    fc.constantFrom('{', '{"volume": {"size": 1', '[]'.repeat(5000), '{"a":'.repeat(2000), '\u0000', '""'),
  );
  const query = fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        'limit',
        'marker',
        'sort',
        'sort_key',
        'sort_dir',
        'status',
        'name',
        'all_tenants',
        'usage',
        'offset',
      ),
      printable,
    ),
    fc.oneof(nasty, fc.array(printable, { maxLength: 3 })),
    { maxKeys: 4 },
  );
  const headers = fc.record(
    {
      'x-auth-token': fc.oneof(fc.constant(token), printable, fc.constant('a:b:c')),
      'openstack-api-version': fc.oneof(
        printable,
        fc.constantFrom('volume 3.0', 'volume 3.60', 'volume 3.999', 'volume latest', 'volume 3.'),
      ),
      'content-type': fc.oneof(
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/json; charset=latin1',
          'multipart/form-data',
        ),
        printable,
      ),
      'x-openstack-request-id': printable,
      traceparent: printable,
      accept: printable,
    },
    { requiredKeys: [] },
  );

  test('no request gets a 5xx, and the api stays up', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.oneof(nasty, fc.constant(volumeId), fc.constant('fuzzproj')),
        query,
        headers,
        fc.option(raw, { nil: undefined }),
        async (pick, param, q, h, payload) => {
          const route = routes[pick % routes.length] as { method: string; path: string };
          const path = route.path
            .replace(/\{project_id\}/g, 'fuzzproj')
            .replace(/\{[a-z_]+\}/g, encodeURIComponent(param));
          const search = new URLSearchParams();
          for (const [k, v] of Object.entries(q)) for (const value of [v].flat()) search.append(k, value);
          const res = await request(`${stack.volumeUrl}${path}?${search}`, {
            method: route.method,
            headers: { 'content-type': 'application/json', ...h },
            ...(payload !== undefined && route.method !== 'GET' ? { rawBody: payload } : {}),
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500)
            throw new Error(`${route.method} ${path}?${search} → ${res.status} ${JSON.stringify(res.body)}`);
          // every refusal is a fault body of one key naming its code
          if (res.status >= 400 && typeof res.body === 'object' && res.body !== null) {
            const [fault] = Object.values(res.body) as { code: number }[];
            if (fault?.code !== res.status)
              throw new Error(`fault body ${JSON.stringify(res.body)} for ${res.status}`);
          }
        },
      ),
      { numRuns: 2000, interruptAfterTimeLimit: 40_000, markInterruptAsFailure: false },
    );
    // the runs reached handlers, not only the refusals at the door
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    expect((await request(`${stack.volumeUrl}/readyz`)).status).toBe(200);
    const volume = await request(`${stack.volumeUrl}/v3/fuzzproj/volumes/${volumeId}`, { token });
    expect([200, 404]).toContain(volume.status);
    expect(stack.service('api').log).not.toMatch(/"level":50.*request failed/);
  }, 90_000);

  test('nor does the identity API, with password auth bodies of any shape', async () => {
    const auth = fc.oneof(
      fc.record({
        auth: fc.record({
          identity: fc.oneof(
            anything,
            fc.record({
              methods: fc.oneof(anything, fc.constant(['password'])),
              password: fc.oneof(
                anything,
                fc.record({
                  user: fc.dictionary(fc.constantFrom('name', 'password', 'id', 'domain'), anything),
                }),
              ),
            }),
          ),
          scope: fc.oneof(
            anything,
            fc.record({ project: fc.dictionary(fc.constantFrom('name', 'id', 'domain'), anything) }),
          ),
        }),
      }),
      anything,
    );
    await fc.assert(
      fc.asyncProperty(auth, headers, fc.boolean(), async (body, h, asGet) => {
        const res = await request(`${stack.identityUrl}/v3/auth/tokens`, {
          method: asGet ? 'GET' : 'POST',
          headers: {
            'content-type': 'application/json',
            ...h,
            ...(asGet ? { 'x-subject-token': h.accept ?? '' } : {}),
          },
          ...(asGet ? {} : { rawBody: JSON.stringify(body) }),
        });
        if (res.status >= 500)
          throw new Error(`${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
      }),
      { numRuns: 500, interruptAfterTimeLimit: 10_000, markInterruptAsFailure: false },
    );
    expect((await request(`${stack.volumeUrl}/healthz`)).status).toBe(200);
  }, 30_000);
});
