import { createDataSource } from '@basalt/db';
import { request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

const V3_3 = { 'OpenStack-API-Version': 'volume 3.3' };

/** The user message a volume's failure left. */
async function messageFor(api: string, token: string, volumeId: string) {
  const listed = await request(`${api}/messages`, { token, headers: V3_3 });
  expect(listed.status).toBe(200);
  return listed.body.messages.find((m: { resource_uuid?: string }) => m.resource_uuid === volumeId);
}

/** Every bad input gets a 4xx in Cinder's fault shape, and nothing is written. */
describe('the volume API refuses bad input cleanly', () => {
  const stack = new VolumeStack();
  const token = 'u1:errproj';
  let api = '';

  beforeAll(async () => {
    await stack.start();
    api = `${stack.volumeUrl}/v3/errproj`;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const volumeCount = async (): Promise<number> =>
    (await request(`${api}/volumes?all_tenants=1`, { token })).body.volumes.length;
  const expectFault = (
    res: { status: number; body: any },
    status: number,
    name: string,
    message?: RegExp,
  ) => {
    expect(res.status).toBe(status);
    expect(Object.keys(res.body)).toEqual([name]);
    expect(res.body[name].code).toBe(status);
    if (message) expect(res.body[name].message).toMatch(message);
  };
  const create = (volume: unknown, extra: { token?: string } = {}) =>
    request(`${api}/volumes`, { method: 'POST', token: extra.token ?? token, body: { volume } });

  test.each([
    ['size 0', { size: 0 }, /0 is less than the minimum of 1/],
    ['negative size', { size: -5 }, /less than the minimum of 1/],
    ['fractional size', { size: 1.5 }, /is not an integer/],
    ['text size', { size: 'ten' }, /is not an integer/],
    ['boolean size', { size: true }, /./],
    ['missing size', { name: 'x' }, /./],
    ['huge size', { size: 2 ** 40 }, /greater than the maximum/],
    ['over-long name', { size: 1, name: 'n'.repeat(256) }, /./],
    ['unknown zone', { size: 1, availability_zone: 'nowhere' }, /Availability zone 'nowhere' is invalid/],
  ])('%s → 400 badRequest', async (_name, volume, message) => {
    const before = await volumeCount();
    expectFault(await create(volume), 400, 'badRequest', message);
    expect(await volumeCount()).toBe(before);
  });

  test('malformed JSON, a non-object body, the wrong media type and an empty body', async () => {
    const before = await volumeCount();
    expectFault(
      await request(`${api}/volumes`, { method: 'POST', token, rawBody: '{"volume": {"size": 1' }),
      400,
      'badRequest',
    );
    expectFault(await request(`${api}/volumes`, { method: 'POST', token, body: [1, 2] }), 400, 'badRequest');
    expectFault(
      await request(`${api}/volumes`, {
        method: 'POST',
        token,
        rawBody: 'size=1',
        headers: { 'Content-Type': 'text/plain' },
      }),
      415,
      'badMediaType',
    );
    expectFault(await request(`${api}/volumes`, { method: 'POST', token, rawBody: '' }), 400, 'badRequest');
    expect(await volumeCount()).toBe(before);
  });

  test('a body over 1 MiB → 413', async () => {
    const res = await create({ size: 1, description: 'x'.repeat(1024 * 1024 + 10) });
    expectFault(res, 413, 'overLimit', /too large/);
  });

  test('names with shell metacharacters are stored and shown exactly as given', async () => {
    const name = `$(touch /tmp/pwned); rm -rf / | cat \`id\` && echo "'"`;
    const created = await create({ size: 1, name, description: '; reboot' });
    expect(created.status).toBe(202);
    const volume = await waitForVolume(api, token, created.body.volume.id, ['available']);
    expect(volume.name).toBe(name);
    expect(volume.description).toBe('; reboot');
    const listed = await request(`${api}/volumes?name=${encodeURIComponent(name)}`, { token });
    expect(listed.body.volumes.map((v: { id: string }) => v.id)).toEqual([volume.id]);
    const renamed = await request(`${api}/volumes/${volume.id}`, {
      method: 'PUT',
      token,
      body: { volume: { name: 'plain', description: null } },
    });
    expect(renamed.body.volume).toMatchObject({ name: 'plain', description: null, status: 'available' });
    const described = await request(`${api}/volumes/${volume.id}`, {
      method: 'PUT',
      token,
      body: { volume: { description: 'd' } },
    });
    expect(described.body.volume).toMatchObject({ name: 'plain', description: 'd' });
    expectFault(
      await request(`${api}/volumes/${volume.id}`, { method: 'PUT', token, body: { volume: {} } }),
      400,
      'badRequest',
    );
  }, 30_000);

  test("unknown ids and routes → 404 itemNotFound; another project's volume stays out of lists", async () => {
    expectFault(
      await request(`${api}/volumes/00000000-0000-4000-8000-000000000000`, { token }),
      404,
      'itemNotFound',
    );
    expectFault(await request(`${api}/volumes/not-a-uuid`, { token }), 404, 'itemNotFound');
    expectFault(await request(`${api}/nothing-here`, { token }), 404, 'itemNotFound');
    const theirs = await create({ size: 1 }, { token: 'u2:otherproj' }).then(() => undefined);
    expect(theirs).toBeUndefined();
    const other = await request(`${stack.volumeUrl}/v3/otherproj/volumes`, {
      method: 'POST',
      token: 'u2:otherproj',
      body: { volume: { size: 1 } },
    });
    expect(other.status).toBe(202);
    const id = other.body.volume.id;
    // noauth callers are admins, and Cinder lets an admin reach any project's volume by id
    expect((await request(`${api}/volumes/${id}`, { token })).status).toBe(200);
    expect(
      (await request(`${api}/volumes/detail`, { token })).body.volumes.map((v: { id: string }) => v.id),
    ).not.toContain(id);
  });

  test('wrong status: delete while extending, extend while not available, extend to a smaller size', async () => {
    const created = await create({ size: 1 });
    const id = created.body.volume.id;
    await waitForVolume(api, token, id, ['available']);
    expectFault(
      await request(`${api}/volumes/${id}/action`, {
        method: 'POST',
        token,
        body: { 'os-extend': { new_size: 1 } },
      }),
      400,
      'badRequest',
      /must be greater than current size/,
    );
    await request(`${api}/volumes/${id}/action`, {
      method: 'POST',
      token,
      body: { 'os-reset_status': { status: 'extending' } },
    });
    expectFault(
      await request(`${api}/volumes/${id}`, { method: 'DELETE', token }),
      400,
      'badRequest',
      /current status is: extending/,
    );
    expectFault(
      await request(`${api}/volumes/${id}/action`, {
        method: 'POST',
        token,
        body: { 'os-extend': { new_size: 5 } },
      }),
      400,
      'badRequest',
      /status must be available/,
    );
    expect((await request(`${api}/volumes/${id}`, { token })).body.volume).toMatchObject({
      status: 'extending',
      size: 1,
    });
    expectFault(
      await request(`${api}/volumes/${id}/action`, { method: 'POST', token, body: { 'os-frobnicate': {} } }),
      400,
      'badRequest',
      /no such action/,
    );
    expectFault(
      await request(`${api}/volumes/${id}/action`, {
        method: 'POST',
        token,
        body: { 'os-reset_status': { status: 'bogus' } },
      }),
      400,
      'badRequest',
    );
  }, 30_000);

  test('when the volume host cannot be reached, extend and delete answer 503 and leave no volume stuck', async () => {
    const created = await create({ size: 1 });
    const id = created.body.volume.id;
    await waitForVolume(api, token, id, ['available']);
    const db = createDataSource({ url: stack.database.url, poolSize: 1 });
    await db.initialize();
    try {
      await db.query("UPDATE volumes SET host = 'host-that-never-started' WHERE id = $1", [id]);
    } finally {
      await db.destroy();
    }
    expectFault(
      await request(`${api}/volumes/${id}/action`, {
        method: 'POST',
        token,
        body: { 'os-extend': { new_size: 2 } },
      }),
      503,
      'serviceUnavailable',
    );
    expect((await request(`${api}/volumes/${id}`, { token })).body.volume).toMatchObject({
      status: 'available',
      size: 1,
    });
    expectFault(
      await request(`${api}/volumes/${id}`, { method: 'DELETE', token }),
      503,
      'serviceUnavailable',
    );
    const after = (await request(`${api}/volumes/${id}`, { token })).body.volume;
    expect(after.status).toBe('error_deleting');
    expect(after).not.toHaveProperty('status_reason');
    expect(await messageFor(api, token, id)).toMatchObject({
      event_id: 'VOLUME_VOLUME_001_001',
      user_message: expect.stringMatching(/^delete volume: .*could not be sent to host-that-never-started/),
    });
  }, 30_000);

  test('a DELETE with Content-Type application/json and no body is accepted, as by Cinder', async () => {
    const created = await create({ size: 1 });
    const id = created.body.volume.id;
    await waitForVolume(api, token, id, ['available']);
    const deleted = await request(`${api}/volumes/${id}`, {
      method: 'DELETE',
      token,
      headers: { 'Content-Type': 'application/json' },
    });
    expect(deleted.status).toBe(202);
    // a body that is not JSON is still refused
    expectFault(
      await request(`${api}/volumes`, { method: 'POST', token, rawBody: '{"volume":', headers: {} }),
      400,
      'badRequest',
    );
  }, 30_000);

  test('over quota → 413 overLimit, and nothing is created', async () => {
    const admin = 'admin:quotaproj';
    const quotaApi = `${stack.volumeUrl}/v3/quotaproj`;
    const set = await request(`${quotaApi}/os-quota-sets/quotaproj`, {
      method: 'PUT',
      token: admin,
      body: { quota_set: { volumes: 1, gigabytes: 3 } },
    });
    // every key of Cinder's quota set (the default type's own, unlimited), and no id in an update's answer
    expect(set.body.quota_set).toEqual({
      volumes: 1,
      gigabytes: 3,
      snapshots: 10,
      backups: 10,
      backup_gigabytes: 1000,
      per_volume_gigabytes: -1,
      groups: 10,
      volumes___DEFAULT__: -1,
      gigabytes___DEFAULT__: -1,
      snapshots___DEFAULT__: -1,
    });
    const big = await request(`${quotaApi}/volumes`, {
      method: 'POST',
      token: admin,
      body: { volume: { size: 4 } },
    });
    expectFault(big, 413, 'overLimit', /gigabytes quota/);
    const first = await request(`${quotaApi}/volumes`, {
      method: 'POST',
      token: admin,
      body: { volume: { size: 1 } },
    });
    expect(first.status).toBe(202);
    const second = await request(`${quotaApi}/volumes`, {
      method: 'POST',
      token: admin,
      body: { volume: { size: 1 } },
    });
    expectFault(second, 413, 'overLimit', /Maximum number of volumes allowed \(1\)/);
    const usage = await request(`${quotaApi}/os-quota-sets/quotaproj?usage=true`, { token: admin });
    expect(usage.body.quota_set.volumes).toEqual({ limit: 1, in_use: 1, reserved: 0 });
    expect(usage.body.quota_set.snapshots).toEqual({ limit: 10, in_use: 0, reserved: 0 });
    expectFault(
      await request(`${quotaApi}/os-quota-sets/quotaproj`, {
        method: 'PUT',
        token: admin,
        body: { quota_set: { volumes: 'many' } },
      }),
      400,
      'badRequest',
    );
  }, 30_000);

  test("larger than every host's free capacity → accepted, then error with a reason the user can read", async () => {
    const admin = 'admin:bigproj';
    const bigApi = `${stack.volumeUrl}/v3/bigproj`;
    await request(`${bigApi}/os-quota-sets/bigproj`, {
      method: 'PUT',
      token: admin,
      body: { quota_set: { gigabytes: -1 } },
    });
    const created = await request(`${bigApi}/volumes`, {
      method: 'POST',
      token: admin,
      body: { volume: { size: 10_000_000 } },
    });
    expect(created.status).toBe(202);
    const volume = await waitForVolume(bigApi, admin, created.body.volume.id, ['error']);
    expect(volume).not.toHaveProperty('status_reason');
    const message = await messageFor(bigApi, admin, volume.id);
    const requestId = created.headers.get('x-openstack-request-id');
    expect(requestId).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(message).toMatchObject({
      // the request that failed: the create's, carried from the API through the scheduler
      request_id: requestId,
      event_id: 'VOLUME_VOLUME_001_003',
      resource_type: 'VOLUME',
      message_level: 'ERROR',
      user_message: expect.stringMatching(
        /^schedule allocate volume: No valid host was found. CapacityFilter rejected every host/,
      ),
    });
    const shown = await request(`${bigApi}/messages/${message.id}`, { token: admin, headers: V3_3 });
    expect(shown.body.message).toEqual(message);
    expect(
      (await request(`${bigApi}/messages/${message.id}`, { method: 'DELETE', token: admin, headers: V3_3 }))
        .status,
    ).toBe(204);
    expectFault(
      await request(`${bigApi}/messages/${message.id}`, { token: admin, headers: V3_3 }),
      404,
      'itemNotFound',
    );
    // the messages API is 3.3's: at 3.0 it does not exist
    expectFault(await request(`${bigApi}/messages`, { token: admin }), 404, 'itemNotFound');
  }, 30_000);

  test('authentication, project and microversion errors', async () => {
    expectFault(await request(`${api}/volumes`), 401, 'unauthorized');
    expectFault(await request(`${api}/volumes`, { token: 'a:b:c' }), 401, 'unauthorized');
    expectFault(
      await request(`${api}/volumes`, { token: 'u1:someoneelse' }),
      400,
      'badRequest',
      /doesn't match/,
    );
    expectFault(
      await request(`${api}/volumes`, { token, headers: { 'OpenStack-API-Version': 'volume 3.99' } }),
      406,
      'notAcceptable',
      /maximum is 3.60/,
    );
    const ok = await request(`${api}/volumes`, { token, headers: { 'OpenStack-API-Version': 'volume 3.5' } });
    expect(ok.headers.get('openstack-api-version')).toBe('volume 3.5');
    expectFault(await request(`${api}/volumes?limit=abc`, { token }), 400, 'badRequest');
    expectFault(await request(`${api}/volumes?sort=password:asc`, { token }), 400, 'badRequest');
  });

  test('pagination with limit and marker walks every volume once, in order, keeping sort and filters', async () => {
    for (const sort of ['created_at:asc', 'created_at:desc', 'name:asc,size:desc']) {
      const walked: string[] = [];
      let url: string | undefined = `${api}/volumes?limit=2&sort=${sort}`;
      let pages = 0;
      while (url) {
        const page: any = await request(url, { token });
        expect(page.status).toBe(200);
        walked.push(...page.body.volumes.map((v: { id: string }) => v.id));
        url = page.body.volumes_links?.[0]?.href;
        pages++;
      }
      const all = await request(`${api}/volumes?sort=${sort}`, { token });
      expect(walked).toEqual(all.body.volumes.map((v: { id: string }) => v.id));
      expect(pages).toBeGreaterThan(1);
    }
  });

  test('health, readiness, versions and the OpenAPI document', async () => {
    expect((await request(`${stack.volumeUrl}/healthz`)).status).toBe(200);
    expect((await request(`${stack.volumeUrl}/readyz`)).body).toEqual({ status: 'ready' });
    const versions = await request(`${stack.volumeUrl}/`);
    expect(versions.status).toBe(300);
    expect(versions.body.versions[0]).toMatchObject({ id: 'v3.0', min_version: '3.0', version: '3.60' });
    const openapi = await request(`${stack.volumeUrl}/openapi.json`);
    expect(openapi.body.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.body.paths)).toContain('/v3/{project_id}/volumes');
  });
});
