import { request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * Every route of the volume API, tried on another project's volume by a member of a project of
 * its own: refused as Cinder refuses (404 for a volume it may not see, 403 for an action its role
 * may not take, 400 for a URL naming a project that is not its token's), and no answer carries
 * the volume. Readers of the owning project read and never write; admins pass.
 */
describe('projects never see each other', () => {
  const stack = new VolumeStack({ authStrategy: 'builtin' });
  const marker = `isolated-${Date.now()}`;
  const tokens: Record<string, string> = {};
  const projects: Record<string, string> = {};
  let volumeId = '';

  async function login(user: string, password: string, project: string): Promise<void> {
    const res = await request(`${stack.identityUrl}/v3/auth/tokens`, {
      method: 'POST',
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, password } } },
          scope: { project: { name: project } },
        },
      },
    });
    expect(res.status).toBe(201);
    tokens[user] = res.headers.get('x-subject-token') as string;
    projects[user] = res.body.token.project.id;
  }

  beforeAll(async () => {
    await stack.start();
    await login('admin', 'adminpass', 'admin');
    await login('alice', 'alicepass', 'demo');
    await login('bob', 'bobpass', 'other');
    await login('carol', 'carolpass', 'demo');
    const created = await request(`${stack.volumeUrl}/v3/${projects.alice}/volumes`, {
      method: 'POST',
      token: tokens.alice,
      body: { volume: { size: 1, name: marker, description: marker } },
    });
    expect(created.status).toBe(202);
    volumeId = created.body.volume.id;
    await waitForVolume(`${stack.volumeUrl}/v3/${projects.alice}`, tokens.alice as string, volumeId, [
      'available',
    ]);
  }, 90_000);
  afterAll(() => stack.stop(), 60_000);

  /** One request per route, as its path template appears in the OpenAPI document. */
  const routes = (): {
    route: string;
    method: Method;
    path: (project: string) => string;
    body?: unknown;
    /** What the other project's member gets. */
    outsider: number;
  }[] => {
    const owner = projects.alice as string;
    return [
      {
        route: 'POST /volumes',
        method: 'POST',
        path: (p) => `/v3/${p}/volumes`,
        body: { volume: { size: 1 } },
        outsider: 202,
      },
      { route: 'GET /volumes', method: 'GET', path: (p) => `/v3/${p}/volumes?all_tenants=1`, outsider: 200 },
      {
        route: 'GET /volumes/detail',
        method: 'GET',
        path: (p) => `/v3/${p}/volumes/detail?all_tenants=1`,
        outsider: 200,
      },
      {
        route: 'GET /volumes/{volume_id}',
        method: 'GET',
        path: (p) => `/v3/${p}/volumes/${volumeId}`,
        outsider: 404,
      },
      {
        route: 'PUT /volumes/{volume_id}',
        method: 'PUT',
        path: (p) => `/v3/${p}/volumes/${volumeId}`,
        body: { volume: { name: 'taken' } },
        outsider: 404,
      },
      {
        route: 'DELETE /volumes/{volume_id}',
        method: 'DELETE',
        path: (p) => `/v3/${p}/volumes/${volumeId}`,
        outsider: 404,
      },
      {
        route: 'POST /volumes/{volume_id}/action',
        method: 'POST',
        path: (p) => `/v3/${p}/volumes/${volumeId}/action`,
        body: { 'os-extend': { new_size: 2 } },
        outsider: 404,
      },
      {
        route: 'POST /volumes/{volume_id}/action',
        method: 'POST',
        path: (p) => `/v3/${p}/volumes/${volumeId}/action`,
        body: { 'os-reset_status': { status: 'error' } },
        outsider: 403,
      },
      {
        route: 'GET /os-quota-sets/{target_project_id}',
        method: 'GET',
        path: (p) => `/v3/${p}/os-quota-sets/${owner}?usage=true`,
        outsider: 403,
      },
      {
        route: 'GET /os-quota-sets/{target_project_id}/defaults',
        method: 'GET',
        path: (p) => `/v3/${p}/os-quota-sets/${owner}/defaults`,
        outsider: 403,
      },
      {
        route: 'PUT /os-quota-sets/{target_project_id}',
        method: 'PUT',
        path: (p) => `/v3/${p}/os-quota-sets/${owner}`,
        body: { quota_set: { volumes: 0 } },
        outsider: 403,
      },
      {
        route: 'DELETE /os-quota-sets/{target_project_id}',
        method: 'DELETE',
        path: (p) => `/v3/${p}/os-quota-sets/${owner}`,
        outsider: 403,
      },
    ];
  };
  const call = (user: string, method: Method, path: string, body?: unknown) =>
    request(`${stack.volumeUrl}${path}`, {
      method,
      token: tokens[user],
      ...(body === undefined ? {} : { body }),
    });

  test('the table covers every route of the API', async () => {
    const doc = (await request(`${stack.volumeUrl}/openapi.json`)).body;
    const served = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .filter(([path]) => path.startsWith('/v3/{project_id}/'))
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.slice('/v3/{project_id}'.length)}`),
      );
    expect(served.length).toBeGreaterThan(5);
    expect([...new Set(routes().map((r) => r.route))].sort()).toEqual([...new Set(served)].sort());
  });

  test("another project's member is refused, and never sees the volume", async () => {
    for (const r of routes()) {
      for (const prefix of [projects.bob as string, '']) {
        const path = prefix ? r.path(prefix) : r.path('').replace('/v3//', '/v3/');
        const res = await call('bob', r.method, path, r.body);
        expect([r.method, path, JSON.stringify(r.body), res.status]).toEqual([
          r.method,
          path,
          JSON.stringify(r.body),
          r.outsider,
        ]);
        const text = JSON.stringify(res.body);
        expect(text).not.toContain(marker);
        if (r.outsider >= 400) expect(Object.keys(res.body)).toHaveLength(1);
        else if (r.method === 'GET') expect(text).not.toContain(volumeId);
      }
      // a URL naming the owner's project is not the token's: Cinder's 400
      const res = await call('bob', r.method, r.path(projects.alice as string), r.body);
      expect([r.route, res.status]).toEqual([r.route, 400]);
      expect(JSON.stringify(res.body)).not.toContain(marker);
    }
    // nothing bob tried changed alice's volume or quotas
    const volume = await call('alice', 'GET', `/v3/${projects.alice}/volumes/${volumeId}`);
    expect(volume.body.volume).toMatchObject({ name: marker, size: 1, status: 'available' });
    const quota = await call('alice', 'GET', `/v3/${projects.alice}/os-quota-sets/${projects.alice}`);
    expect(quota.body.quota_set.volumes).toBe(10);
  }, 60_000);

  test('a reader of the project reads everything and writes nothing', async () => {
    const p = projects.carol as string;
    expect((await call('carol', 'GET', `/v3/${p}/volumes/${volumeId}`)).body.volume.name).toBe(marker);
    expect(
      (await call('carol', 'GET', `/v3/${p}/volumes/detail`)).body.volumes.map((v: { id: string }) => v.id),
    ).toEqual([volumeId]);
    expect((await call('carol', 'GET', `/v3/${p}/os-quota-sets/${p}`)).status).toBe(200);
    for (const [method, path, body, rule] of [
      ['POST', `/v3/${p}/volumes`, { volume: { size: 1 } }, 'volume:create'],
      ['PUT', `/v3/${p}/volumes/${volumeId}`, { volume: { name: 'x' } }, 'volume:update'],
      ['DELETE', `/v3/${p}/volumes/${volumeId}`, undefined, 'volume:delete'],
      ['POST', `/v3/${p}/volumes/${volumeId}/action`, { 'os-extend': { new_size: 2 } }, 'volume:extend'],
    ] as const) {
      const res = await call('carol', method, path, body);
      expect([method, path, res.status, res.body]).toEqual([
        method,
        path,
        403,
        { forbidden: { code: 403, message: `Policy doesn't allow ${rule} to be performed.` } },
      ]);
    }
    expect((await call('alice', 'GET', `/v3/${p}/volumes/${volumeId}`)).body.volume).toMatchObject({
      name: marker,
      size: 1,
    });
  });

  test('an admin sees every project and takes admin actions', async () => {
    const p = projects.admin as string;
    const all = await call('admin', 'GET', `/v3/${p}/volumes?all_tenants=1`);
    expect(all.body.volumes.map((v: { id: string }) => v.id)).toContain(volumeId);
    expect((await call('admin', 'GET', `/v3/${p}/os-quota-sets/${projects.alice}`)).status).toBe(200);
    // bob's own volumes stayed bob's: alice's project lists only hers
    const alices = await call('alice', 'GET', `/v3/${projects.alice}/volumes`);
    expect(alices.body.volumes.map((v: { id: string }) => v.id)).toEqual([volumeId]);
  });
});
