import { request, waitForResource, waitForVolume } from '../support/http';
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
  let snapshotId = '';

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
    const snapshot = await request(`${stack.volumeUrl}/v3/${projects.alice}/snapshots`, {
      method: 'POST',
      token: tokens.alice,
      body: { snapshot: { volume_id: volumeId, name: marker, metadata: { owner: 'alice' } } },
    });
    expect(snapshot.status).toBe(202);
    snapshotId = snapshot.body.snapshot.id;
    await waitForResource(
      `${stack.volumeUrl}/v3/${projects.alice}`,
      tokens.alice as string,
      'snapshot',
      snapshotId,
      ['available'],
    );
  }, 90_000);
  afterAll(() => stack.stop(), 60_000);

  /** route as the OpenAPI document names it, method, path under the project, body, what the other project's member gets */
  type Case = [string, Method, string, unknown, number | number[]];
  /** One request per route, as its path template appears in the OpenAPI document. */
  const routes = () => {
    const owner = projects.alice as string;
    const v = `/volumes/${volumeId}`;
    const s = `/snapshots/${snapshotId}`;
    const nowhere = '00000000-0000-4000-8000-000000000000';
    const admin = 403;
    const service = { host: 'x', binary: 'cinder-volume' };
    const cases: Case[] = [
      ['POST /volumes', 'POST', '/volumes', { volume: { size: 1 } }, 202],
      ['GET /volumes', 'GET', '/volumes?all_tenants=1', undefined, 200],
      ['GET /volumes/detail', 'GET', '/volumes/detail?all_tenants=1', undefined, 200],
      ['GET /volumes/summary', 'GET', '/volumes/summary?all_tenants=1', undefined, 200],
      ['GET /volumes/{volume_id}', 'GET', v, undefined, 404],
      ['PUT /volumes/{volume_id}', 'PUT', v, { volume: { name: 'taken' } }, 404],
      ['DELETE /volumes/{volume_id}', 'DELETE', v, undefined, 404],
      ['POST /volumes/{volume_id}/action', 'POST', `${v}/action`, { 'os-extend': { new_size: 2 } }, 404],
      ['POST /volumes/{volume_id}/action', 'POST', `${v}/action`, { 'os-reserve': {} }, 404],
      [
        'POST /volumes/{volume_id}/action',
        'POST',
        `${v}/action`,
        { 'os-set_bootable': { bootable: true } },
        404,
      ],
      [
        'POST /volumes/{volume_id}/action',
        'POST',
        `${v}/action`,
        { 'os-reset_status': { status: 'error' } },
        admin,
      ],
      ['POST /volumes/{volume_id}/action', 'POST', `${v}/action`, { 'os-force_delete': {} }, admin],
      ['GET /volumes/{volume_id}/metadata', 'GET', `${v}/metadata`, undefined, 404],
      ['POST /volumes/{volume_id}/metadata', 'POST', `${v}/metadata`, { metadata: { k: 'v' } }, 404],
      ['PUT /volumes/{volume_id}/metadata', 'PUT', `${v}/metadata`, { metadata: { k: 'v' } }, 404],
      ['GET /volumes/{volume_id}/metadata/{key}', 'GET', `${v}/metadata/owner`, undefined, 404],
      [
        'PUT /volumes/{volume_id}/metadata/{key}',
        'PUT',
        `${v}/metadata/owner`,
        { meta: { owner: 'bob' } },
        404,
      ],
      ['DELETE /volumes/{volume_id}/metadata/{key}', 'DELETE', `${v}/metadata/owner`, undefined, 404],
      ['POST /snapshots', 'POST', '/snapshots', { snapshot: { volume_id: volumeId, name: 'steal' } }, 404],
      ['GET /snapshots', 'GET', '/snapshots?all_tenants=1', undefined, 200],
      ['GET /snapshots/detail', 'GET', '/snapshots/detail?all_tenants=1', undefined, 200],
      ['GET /snapshots/{snapshot_id}', 'GET', s, undefined, 404],
      ['PUT /snapshots/{snapshot_id}', 'PUT', s, { snapshot: { name: 'taken' } }, 404],
      ['DELETE /snapshots/{snapshot_id}', 'DELETE', s, undefined, 404],
      [
        'POST /snapshots/{snapshot_id}/action',
        'POST',
        `${s}/action`,
        { 'os-update_snapshot_status': { status: 'error' } },
        404,
      ],
      [
        'POST /snapshots/{snapshot_id}/action',
        'POST',
        `${s}/action`,
        { 'os-reset_status': { status: 'error' } },
        admin,
      ],
      ['POST /snapshots/{snapshot_id}/action', 'POST', `${s}/action`, { 'os-force_delete': {} }, admin],
      ['GET /snapshots/{snapshot_id}/metadata', 'GET', `${s}/metadata`, undefined, 404],
      ['POST /snapshots/{snapshot_id}/metadata', 'POST', `${s}/metadata`, { metadata: { k: 'v' } }, 404],
      ['PUT /snapshots/{snapshot_id}/metadata', 'PUT', `${s}/metadata`, { metadata: { k: 'v' } }, 404],
      ['GET /snapshots/{snapshot_id}/metadata/{key}', 'GET', `${s}/metadata/owner`, undefined, 404],
      [
        'PUT /snapshots/{snapshot_id}/metadata/{key}',
        'PUT',
        `${s}/metadata/owner`,
        { meta: { owner: 'bob' } },
        404,
      ],
      ['DELETE /snapshots/{snapshot_id}/metadata/{key}', 'DELETE', `${s}/metadata/owner`, undefined, 404],
      ['GET /os-quota-sets/{target_project_id}', 'GET', `/os-quota-sets/${owner}?usage=true`, undefined, 403],
      [
        'GET /os-quota-sets/{target_project_id}/defaults',
        'GET',
        `/os-quota-sets/${owner}/defaults`,
        undefined,
        403,
      ],
      [
        'PUT /os-quota-sets/{target_project_id}',
        'PUT',
        `/os-quota-sets/${owner}`,
        { quota_set: { volumes: 0 } },
        403,
      ],
      ['DELETE /os-quota-sets/{target_project_id}', 'DELETE', `/os-quota-sets/${owner}`, undefined, 403],
      ['GET /os-quota-class-sets/{class_name}', 'GET', '/os-quota-class-sets/default', undefined, admin],
      [
        'PUT /os-quota-class-sets/{class_name}',
        'PUT',
        '/os-quota-class-sets/default',
        { quota_class_set: { volumes: 0 } },
        admin,
      ],
      ['GET /messages', 'GET', '/messages', undefined, 200],
      ['GET /messages/{message_id}', 'GET', `/messages/${nowhere}`, undefined, 404],
      ['DELETE /messages/{message_id}', 'DELETE', `/messages/${nowhere}`, undefined, 404],
      ['GET /os-services', 'GET', '/os-services', undefined, admin],
      ['PUT /os-services/enable', 'PUT', '/os-services/enable', service, admin],
      ['PUT /os-services/disable', 'PUT', '/os-services/disable', service, admin],
      [
        'PUT /os-services/disable-log-reason',
        'PUT',
        '/os-services/disable-log-reason',
        { ...service, disabled_reason: 'r' },
        admin,
      ],
      ['PUT /os-services/freeze', 'PUT', '/os-services/freeze', { host: 'x' }, admin],
      ['PUT /os-services/thaw', 'PUT', '/os-services/thaw', { host: 'x' }, admin],
      ['GET /os-hosts', 'GET', '/os-hosts', undefined, admin],
      ['GET /os-hosts/{host}', 'GET', `/os-hosts/${stack.host}`, undefined, admin],
      ['GET /scheduler-stats/get_pools', 'GET', '/scheduler-stats/get_pools?detail=true', undefined, admin],
      ['GET /capabilities/{host}', 'GET', `/capabilities/${stack.host}`, undefined, admin],
      // served under /v3/{project_id} only: under /v3 it is not found
      [
        'GET /traces/{request_id}',
        'GET',
        '/traces/req-00000000-0000-4000-8000-000000000000',
        undefined,
        [403, 404],
      ],
      ['GET /os-availability-zone', 'GET', '/os-availability-zone', undefined, 200],
      ['GET /limits', 'GET', '/limits', undefined, 200],
      ['GET /extensions', 'GET', '/extensions', undefined, 200],
      ['GET /types', 'GET', '/types', undefined, 200],
      ['GET /types/default', 'GET', '/types/default', undefined, [200, 404]],
      ['GET /types/{type_id}', 'GET', `/types/${nowhere}`, undefined, 404],
      ['POST /types', 'POST', '/types', { volume_type: { name: 'bobs' } }, admin],
      ['PUT /types/{type_id}', 'PUT', `/types/${nowhere}`, { volume_type: { name: 'x' } }, admin],
      ['DELETE /types/{type_id}', 'DELETE', `/types/${nowhere}`, undefined, admin],
      ['GET /types/{type_id}/extra_specs', 'GET', `/types/${nowhere}/extra_specs`, undefined, [403, 404]],
      [
        'POST /types/{type_id}/extra_specs',
        'POST',
        `/types/${nowhere}/extra_specs`,
        { extra_specs: { a: 'b' } },
        admin,
      ],
      [
        'GET /types/{type_id}/extra_specs/{key}',
        'GET',
        `/types/${nowhere}/extra_specs/a`,
        undefined,
        [403, 404],
      ],
      ['PUT /types/{type_id}/extra_specs/{key}', 'PUT', `/types/${nowhere}/extra_specs/a`, { a: 'b' }, admin],
      [
        'DELETE /types/{type_id}/extra_specs/{key}',
        'DELETE',
        `/types/${nowhere}/extra_specs/a`,
        undefined,
        admin,
      ],
      [
        'GET /types/{type_id}/os-volume-type-access',
        'GET',
        `/types/${nowhere}/os-volume-type-access`,
        undefined,
        admin,
      ],
      [
        'POST /types/{type_id}/action',
        'POST',
        `/types/${nowhere}/action`,
        { addProjectAccess: { project: owner } },
        admin,
      ],
    ];
    for (const base of ['/os-volume-transfer', '/volume-transfers']) {
      cases.push(
        [`POST ${base}`, 'POST', base, { transfer: { volume_id: volumeId, name: 'steal' } }, 404],
        [`GET ${base}`, 'GET', base, undefined, 200],
        [`GET ${base}/detail`, 'GET', `${base}/detail`, undefined, 200],
        [`GET ${base}/{transfer_id}`, 'GET', `${base}/${nowhere}`, undefined, 404],
        [`DELETE ${base}/{transfer_id}`, 'DELETE', `${base}/${nowhere}`, undefined, 404],
        [
          `POST ${base}/{transfer_id}/accept`,
          'POST',
          `${base}/${nowhere}/accept`,
          { accept: { auth_key: 'x' } },
          404,
        ],
      );
    }
    return cases.map(([route, method, path, body, outsider]) => ({
      route,
      method,
      path: (p: string) => (p ? `/v3/${p}${path}` : `/v3${path}`),
      body,
      outsider: [outsider].flat(),
      // the newer routes exist from their microversion on
      version: route.includes('/volume-transfers')
        ? '3.55'
        : route.includes('summary')
          ? '3.12'
          : route.includes('/messages')
            ? '3.3'
            : '3.0',
    }));
  };
  const call = (user: string, method: Method, path: string, body?: unknown, version = '3.0') =>
    request(`${stack.volumeUrl}${path}`, {
      method,
      token: tokens[user],
      headers: { 'OpenStack-API-Version': `volume ${version}` },
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
        const path = r.path(prefix);
        const res = await call('bob', r.method, path, r.body, r.version);
        const what = `${r.method} ${path} ${JSON.stringify(r.body) ?? ''}`;
        expect([what, r.outsider.includes(res.status) ? 'as expected' : res.status]).toEqual([
          what,
          'as expected',
        ]);
        const text = JSON.stringify(res.body);
        expect(text).not.toContain(marker);
        if (res.status >= 400) expect(Object.keys(res.body)).toHaveLength(1);
        else if (r.method === 'GET') expect([what, text.includes(volumeId)]).toEqual([what, false]);
      }
      // a URL naming the owner's project is not the token's: Cinder's 400
      const res = await call('bob', r.method, r.path(projects.alice as string), r.body, r.version);
      expect([r.route, res.status]).toEqual([r.route, 400]);
      expect(JSON.stringify(res.body)).not.toContain(marker);
    }
    // nothing bob tried changed alice's volume, snapshot or quotas
    const volume = await call('alice', 'GET', `/v3/${projects.alice}/volumes/${volumeId}`);
    expect(volume.body.volume).toMatchObject({ name: marker, size: 1, status: 'available' });
    const snapshot = await call('alice', 'GET', `/v3/${projects.alice}/snapshots/${snapshotId}`);
    expect(snapshot.body.snapshot).toMatchObject({
      name: marker,
      status: 'available',
      metadata: { owner: 'alice' },
    });
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
      ['POST', `/v3/${p}/snapshots`, { snapshot: { volume_id: volumeId } }, 'volume:create_snapshot'],
      ['DELETE', `/v3/${p}/snapshots/${snapshotId}`, undefined, 'volume:delete_snapshot'],
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
