import { createDataSource } from '@basalt/db';
import { passwordToken, request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

const at = (version: string) => ({ 'OpenStack-API-Version': `volume ${version}` });
const MAX_LIMIT = 4;

/**
 * Every collection pages, sorts and filters as Cinder's own: limit (capped at osapi_max_limit),
 * marker, offset, `sort=key:dir,...`, the resource's filters, `<collection>_links` next links,
 * and Cinder's faults for bad input.
 */
describe('lists page, sort and filter as Cinder lists do', () => {
  const stack = new VolumeStack({
    authStrategy: 'builtin',
    extraEnv: { BASALT__API__OSAPI_MAX_LIMIT: String(MAX_LIMIT) },
  });
  let admin = '';
  let alice = '';
  let demo = '';
  let adminApi = '';
  let api = '';
  const volumes: string[] = [];
  const failed: string[] = [];

  beforeAll(async () => {
    await stack.start();
    const asAdmin = await tokenFor('admin', 'adminpass', 'admin');
    const asAlice = await tokenFor('alice', 'alicepass', 'demo');
    [admin, alice, demo] = [asAdmin.token, asAlice.token, asAlice.projectId];
    adminApi = `${stack.volumeUrl}/v3/${asAdmin.projectId}`;
    api = `${stack.volumeUrl}/v3/${demo}`;
    await request(`${adminApi}/os-quota-sets/${demo}`, {
      method: 'PUT',
      token: admin,
      body: { quota_set: { gigabytes: -1, volumes: -1 } },
    });
    // sizes 1..6: distinct, so a sort by size has one right answer
    for (let size = 1; size <= 6; size++) {
      const created = await request(`${api}/volumes`, {
        method: 'POST',
        token: alice,
        body: { volume: { size, name: `list-${size % 3}` } },
      });
      expect(created.status).toBe(202);
      volumes.push(created.body.volume.id);
    }
    // larger than any host: each leaves a user message
    for (let i = 0; i < 3; i++) {
      const created = await request(`${api}/volumes`, {
        method: 'POST',
        token: alice,
        body: { volume: { size: 10_000_000 + i } },
      });
      failed.push(created.body.volume.id);
    }
    for (const id of volumes) await waitForVolume(api, alice, id, ['available']);
    for (const id of failed) await waitForVolume(api, alice, id, ['error']);
  }, 120_000);
  afterAll(() => stack.stop(), 60_000);

  /** Follows `<key>_links` from `url` to the end; every page holds at most the limit. */
  async function walk(url: string, token: string, key: string, headers: Record<string, string> = {}) {
    const ids: string[] = [];
    let next: string | undefined = url;
    let pages = 0;
    while (next) {
      const page: any = await request(next, { token, headers });
      expect(page.status).toBe(200);
      expect(page.body[key].length).toBeLessThanOrEqual(MAX_LIMIT);
      ids.push(...page.body[key].map((item: { id: string }) => item.id));
      next = page.body[`${key}_links`]?.[0]?.href;
      pages++;
      expect(pages).toBeLessThan(50);
    }
    return { ids, pages };
  }

  const expectFault = (res: { status: number; body: any }, status: number, name: string, message: string) => {
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ [name]: { code: status, message } });
  };

  /** The same bad inputs get the same faults from every collection. */
  async function expectCinderRefusals(
    url: string,
    token: string,
    headers: Record<string, string>,
    missing: string,
  ) {
    const get = (query: string) =>
      request(`${url}${url.includes('?') ? '&' : '?'}${query}`, { token, headers });
    expectFault(await get('limit=abc'), 400, 'badRequest', 'limit param must be an integer');
    expectFault(await get('limit=-1'), 400, 'badRequest', 'limit param must be positive');
    expectFault(await get('offset=-2'), 400, 'badRequest', 'offset must be >= 0');
    expectFault(
      await get('sort=provider_auth:asc'),
      400,
      'badRequest',
      'Invalid input received: Invalid sort key',
    );
    expectFault(
      await get('sort=created_at:sideways'),
      400,
      'badRequest',
      "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
    );
    expectFault(
      await get('sort=created_at&sort_key=id'),
      400,
      'badRequest',
      "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
    );
    const nowhere = '00000000-0000-4000-8000-000000000000';
    expectFault(
      await get(`marker=${nowhere}`),
      404,
      'itemNotFound',
      `${missing} ${nowhere} could not be found.`,
    );
    expectFault(
      await get('marker=not-an-id'),
      404,
      'itemNotFound',
      `${missing} not-an-id could not be found.`,
    );
  }

  test('volumes: every page once, in either direction, the limit capped, the filters kept in the links', async () => {
    for (const dir of ['asc', 'desc']) {
      const { ids, pages } = await walk(
        `${api}/volumes/detail?limit=2&sort=size:${dir}&name~=x`,
        alice,
        'volumes',
        at('3.30'),
      );
      expect(pages).toBeGreaterThan(3);
      const bySize = [...volumes, ...failed];
      expect(ids).toEqual(dir === 'asc' ? bySize : [...bySize].reverse());
    }
    // no limit, or one above osapi_max_limit: pages of osapi_max_limit, still linked
    const capped = await request(`${api}/volumes?limit=100`, { token: alice });
    expect(capped.body.volumes).toHaveLength(MAX_LIMIT);
    expect(capped.body.volumes_links[0].href).toMatch(
      new RegExp(`^${stack.volumeUrl}/v3/${demo}/volumes\\?limit=100&marker=`),
    );
    expect((await walk(`${api}/volumes`, alice, 'volumes')).ids).toHaveLength(9);
    // a filter is kept across pages
    const named = await walk(`${api}/volumes/detail?limit=1&name=list-1&sort=size:asc`, alice, 'volumes');
    expect(named.ids).toEqual([volumes[0], volumes[3]]);
    const offset = await request(`${api}/volumes?sort=size:asc&offset=2&limit=2`, { token: alice });
    expect(offset.body.volumes.map((v: { id: string }) => v.id)).toEqual(volumes.slice(2, 4));
    const big = await request(`${api}/volumes?size=4`, { token: alice });
    expect(big.body.volumes.map((v: { id: string }) => v.id)).toEqual([volumes[3]]);
    // a member's filter the volume list does not offer: dropped before 3.31, refused from then on
    expect((await request(`${api}/volumes?host=x`, { token: alice, headers: at('3.30') })).status).toBe(200);
    expectFault(
      await request(`${api}/volumes?host=x&bogus=1`, { token: alice, headers: at('3.31') }),
      400,
      'badRequest',
      'Invalid filters host,bogus are found in query options.',
    );
    await expectCinderRefusals(`${api}/volumes`, alice, {}, 'Volume');
  });

  test('messages (3.5+): pages with messages_links, sorted either way, filtered by their columns', async () => {
    const v35 = at('3.5');
    const asc = await walk(`${api}/messages?limit=1&sort=created_at:asc`, alice, 'messages', v35);
    const desc = await walk(`${api}/messages?limit=1&sort=created_at:desc`, alice, 'messages', v35);
    expect(asc.ids).toHaveLength(3);
    expect(asc.pages).toBe(4);
    expect(desc.ids).toEqual([...asc.ids].reverse());
    const byResource = await request(`${api}/messages?resource_uuid=${failed[1]}`, {
      token: alice,
      headers: v35,
    });
    expect(byResource.body.messages.map((m: { resource_uuid: string }) => m.resource_uuid)).toEqual([
      failed[1],
    ]);
    const none = await request(`${api}/messages?message_level=INFO`, { token: alice, headers: v35 });
    expect(none.body.messages).toEqual([]);
    expectFault(
      await request(`${api}/messages?volume_id=x`, { token: alice, headers: at('3.31') }),
      400,
      'badRequest',
      'Invalid filters volume_id are found in query options.',
    );
    await expectCinderRefusals(`${api}/messages`, alice, v35, 'Message');
  });

  test('volume transfers (3.59+): pages with transfers_links, sorted either way; oldest first before 3.59', async () => {
    const offered: string[] = [];
    for (const volumeId of volumes.slice(0, 3)) {
      const created = await request(`${api}/volume-transfers`, {
        method: 'POST',
        token: alice,
        headers: at('3.55'),
        body: { transfer: { volume_id: volumeId, name: 'handover' } },
      });
      expect(created.status).toBe(202);
      offered.push(created.body.transfer.id);
    }
    try {
      const v359 = at('3.59');
      const asc = await walk(
        `${api}/volume-transfers/detail?limit=2&sort=created_at:asc`,
        alice,
        'transfers',
        v359,
      );
      expect(asc.ids).toEqual(offered);
      expect(asc.pages).toBe(2);
      const desc = await walk(
        `${api}/volume-transfers?limit=1&sort=created_at:desc`,
        alice,
        'transfers',
        v359,
      );
      expect(desc.ids).toEqual([...offered].reverse());
      const first = await request(`${api}/volume-transfers?limit=1`, { token: alice, headers: v359 });
      // Cinder's transfer view links every list to os-volume-transfer
      expect(first.body.transfers_links[0].href).toMatch(/\/os-volume-transfer\?limit=1&marker=/);
      const byVolume = await request(`${api}/volume-transfers?volume_id=${volumes[1]}`, {
        token: alice,
        headers: v359,
      });
      expect(byVolume.body.transfers.map((t: { id: string }) => t.id)).toEqual([offered[1]]);
      // a column transfers lack matches nothing, as in Cinder
      const unknown = await request(`${api}/volume-transfers?colour=red`, { token: alice, headers: v359 });
      expect(unknown.body.transfers).toEqual([]);
      const legacy = await request(`${api}/os-volume-transfer?sort=created_at:desc`, { token: alice });
      expect(legacy.body.transfers.map((t: { id: string }) => t.id)).toEqual(offered);
      await expectCinderRefusals(`${api}/volume-transfers`, alice, v359, 'Transfer');
    } finally {
      for (const id of offered)
        await request(`${api}/os-volume-transfer/${id}`, { method: 'DELETE', token: alice });
    }
  });

  test('volume types: marker, limit and sort (no links, as Cinder); member filters checked from 3.52', async () => {
    const made: string[] = [];
    for (const name of ['list-type-b', 'list-type-a', 'list-type-c']) {
      const created = await request(`${adminApi}/types`, {
        method: 'POST',
        token: admin,
        body: { volume_type: { name, extra_specs: { volume_backend_name: name } } },
      });
      expect(created.status).toBe(200);
      made.push(created.body.volume_type.id);
    }
    try {
      const names = async (query: string, token = alice, headers = {}) => {
        const res = await request(`${token === admin ? adminApi : api}/types?${query}`, { token, headers });
        expect(res.status).toBe(200);
        expect(res.body).not.toHaveProperty('volume_types_links');
        return res.body.volume_types.map((t: { name: string }) => t.name);
      };
      const all = await names('sort=name:asc');
      expect(all).toEqual([...all].sort());
      expect(await names('sort=name:desc')).toEqual([...all].reverse());
      const walked: string[] = [];
      let marker = '';
      for (;;) {
        const res = await request(`${api}/types?sort=name:asc&limit=1${marker ? `&marker=${marker}` : ''}`, {
          token: alice,
        });
        if (res.body.volume_types.length === 0) break;
        walked.push(res.body.volume_types[0].name);
        marker = res.body.volume_types[0].id;
      }
      expect(walked).toEqual(all);
      expect(await names('name=list-type-a', admin)).toEqual(['list-type-a']);
      expect(await names("extra_specs={'volume_backend_name':'list-type-c'}", admin)).toEqual([
        'list-type-c',
      ]);
      // a spec a member may not read: no type, rather than a list that ignores the filter
      expect(await names("extra_specs={'volume_backend_name':'list-type-c'}", alice, at('3.52'))).toEqual([]);
      expect(await names('bogus=1&sort=name:asc', alice, at('3.51'))).toEqual(all);
      expectFault(
        await request(`${api}/types?bogus=1`, { token: alice, headers: at('3.52') }),
        400,
        'badRequest',
        'Invalid filters bogus are found in query options.',
      );
      expect(await names('bogus=1', admin)).toEqual([]);
      await expectCinderRefusals(`${api}/types`, alice, {}, 'Volume type');
    } finally {
      for (const id of made) await request(`${adminApi}/types/${id}`, { method: 'DELETE', token: admin });
    }
  });

  test('3.48: a volume names the uuid of the volume service hosting it; no target is shared', async () => {
    const db = createDataSource({ url: stack.database.url, poolSize: 1 });
    await db.initialize();
    let uuid: string;
    try {
      const [row] = await db.query(
        `SELECT s.uuid FROM services s JOIN volumes v ON v.host = s.host
          WHERE s."binary" = 'basalt-volume' AND v.id = $1`,
        [volumes[0]],
      );
      uuid = row.uuid;
    } finally {
      await db.destroy();
    }
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const shown = await request(`${api}/volumes/${volumes[0]}`, { token: alice, headers: at('3.48') });
    expect(shown.body.volume).toMatchObject({ service_uuid: uuid, shared_targets: false });
    // never placed: no service
    const unplaced = await request(`${api}/volumes/${failed[0]}`, { token: alice, headers: at('3.48') });
    expect(unplaced.body.volume.service_uuid).toBeNull();
    const listed = await request(`${api}/volumes/detail?sort=size:asc&limit=1`, {
      token: alice,
      headers: at('3.48'),
    });
    expect(listed.body.volumes[0].service_uuid).toBe(uuid);
    const old = await request(`${api}/volumes/${volumes[0]}`, { token: alice, headers: at('3.47') });
    expect(old.body.volume).not.toHaveProperty('service_uuid');
  });

  async function tokenFor(user: string, password: string, project: string) {
    const answer = await passwordToken(stack.identityUrl, user, password, project);
    expect(answer.status).toBe(201);
    return answer;
  }
});
