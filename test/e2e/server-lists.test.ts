import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { passwordToken, request, waitForResource } from '../support/http';
import { VolumeStack } from '../support/stack';

const MAX_LIMIT = 4;
const at = (version: string) => ({ 'OpenStack-API-Version': `compute ${version}` });

/**
 * Server lists page, sort and filter as Nova's do (limit, marker, `servers_links`, sort_key and
 * sort_dir, name/status/host/changes-since, all_tenants for admins) with Nova's faults. The stack
 * has no compute host: every server ends in ERROR ("no valid host"), which is all a list needs.
 */
describe('server lists as Nova gives them', () => {
  const stack = new VolumeStack({
    authStrategy: 'builtin',
    extraEnv: { BASALT__API__OSAPI_MAX_LIMIT: String(MAX_LIMIT) },
  });
  let admin = '';
  let alice = '';
  let bob = '';
  let demo = '';
  let other = '';
  let adminApi = '';
  let api = '';
  /** alice's servers, oldest first. */
  const servers: string[] = [];
  let bobServer = '';
  let image = '';

  const create = async (base: string, token: string, name: string, image: string) => {
    const created = await request(`${base}/servers`, {
      method: 'POST',
      token,
      body: { server: { name, flavorRef: '1', imageRef: image, networks: 'none' } },
    });
    expect(created.status).toBe(202);
    return created.body.server.id as string;
  };

  beforeAll(async () => {
    await stack.start();
    const file = join(stack.dir, 'tiny.raw');
    writeFileSync(file, Buffer.alloc(1024 * 1024));
    const created = await stack.basalt('image', 'create', '--file', file, '--name', 'tiny');
    image = /\| id +\| (\S+) +\|/.exec(created)?.[1] as string;
    const asAdmin = await passwordToken(stack.identityUrl, 'admin', 'adminpass', 'admin');
    const asAlice = await passwordToken(stack.identityUrl, 'alice', 'alicepass', 'demo');
    const asBob = await passwordToken(stack.identityUrl, 'bob', 'bobpass', 'other');
    [admin, alice, bob] = [asAdmin.token, asAlice.token, asBob.token];
    [demo, other] = [asAlice.projectId, asBob.projectId];
    adminApi = `${stack.computeUrl}/v2.1/${asAdmin.projectId}`;
    api = `${stack.computeUrl}/v2.1/${demo}`;
    // one at a time: distinct created_at, so the default order has one right answer
    for (const name of ['srv-1', 'srv-2', 'srv-3', 'srv-4', 'srv-5']) {
      servers.push(await create(api, alice, name, image));
    }
    bobServer = await create(`${stack.computeUrl}/v2.1/${other}`, bob, 'srv-bob', image);
    for (const id of servers) await waitForResource(api, alice, 'server', id, ['ERROR']);
  }, 120_000);
  afterAll(() => stack.stop(), 60_000);

  const ids = (res: { body: any }) => (res.body.servers as { id: string }[]).map((s) => s.id);
  const expectFault = (res: { status: number; body: any }, status: number, name: string, message: string) => {
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ [name]: { code: status, message } });
  };

  test('pages follow servers_links to the end, newest first, the next link as Nova writes it', async () => {
    const first = await request(`${api}/servers/detail?limit=2`, { token: alice });
    expect(first.status).toBe(200);
    expect(ids(first)).toEqual([servers[4], servers[3]]);
    expect(first.body.servers_links).toEqual([
      { rel: 'next', href: `${stack.computeUrl}/v2.1/${demo}/servers/detail?limit=2&marker=${servers[3]}` },
    ]);
    const seen: string[] = [];
    let next: string | undefined = `${api}/servers?limit=2`;
    while (next) {
      const page: any = await request(next, { token: alice });
      expect(page.status).toBe(200);
      seen.push(...ids(page));
      next = page.body.servers_links?.[0]?.href;
    }
    expect(seen).toEqual([...servers].reverse());
    // the last page is short: no link; a page at the cap has one even with no limit given
    const capped = await request(`${api}/servers`, { token: alice });
    expect(capped.body.servers).toHaveLength(MAX_LIMIT);
    expect(capped.body.servers_links[0].href).toBe(
      `${stack.computeUrl}/v2.1/${demo}/servers?marker=${servers[1]}`,
    );
    // parameters stay, in name order, the marker last when the request had none, under the
    // project-less URL when the request's was
    const bare = await request(`${stack.computeUrl}/v2.1/servers?sort_dir=asc&limit=1&name=srv`, {
      token: alice,
    });
    expect(bare.body.servers_links[0].href).toBe(
      `${stack.computeUrl}/v2.1/servers?limit=1&name=srv&sort_dir=asc&marker=${servers[0]}`,
    );
  });

  test('sort_key and sort_dir, several of each, with the ignored keys dropped', async () => {
    const byName = await request(`${api}/servers?sort_key=display_name&sort_dir=asc`, { token: alice });
    expect(ids(byName)).toEqual(servers.slice(0, MAX_LIMIT));
    const twoKeys = await request(
      `${api}/servers?sort_key=vm_state&sort_dir=asc&sort_key=display_name&sort_dir=desc`,
      { token: alice },
    );
    expect(ids(twoKeys)).toEqual([...servers].reverse().slice(0, MAX_LIMIT));
    // an ignored key with its direction is dropped: the default order remains
    const ignored = await request(`${api}/servers?sort_key=vcpus&sort_dir=asc`, { token: alice });
    expect(ids(ignored)).toEqual([...servers].reverse().slice(0, MAX_LIMIT));
  });

  test("Nova's faults for a bad marker, sort key, sort direction and limit", async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    expectFault(
      await request(`${api}/servers?marker=${missing}`, { token: alice }),
      400,
      'badRequest',
      `marker [${missing}] not found`,
    );
    // another project's server is no marker either
    expectFault(
      await request(`${api}/servers/detail?marker=${bobServer}`, { token: alice }),
      400,
      'badRequest',
      `marker [${bobServer}] not found`,
    );
    const badKey = await request(`${api}/servers?sort_key=bogus`, { token: alice });
    expect(badKey.status).toBe(400);
    expect(badKey.body.badRequest.message).toMatch(
      /^Invalid input for query parameters sort_key\. Value: bogus\. 'bogus' is not one of \['access_ip_v4', 'access_ip_v6', /,
    );
    expectFault(
      await request(`${api}/servers?sort_key=display_name&sort_dir=up`, { token: alice }),
      400,
      'badRequest',
      "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'",
    );
    expectFault(
      await request(`${api}/servers?limit=-1`, { token: alice }),
      400,
      'badRequest',
      "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
    );
    expectFault(
      await request(`${api}/servers?sort_key=host`, { token: alice }),
      403,
      'forbidden',
      'Only administrators can sort servers by host',
    );
  });

  test('name is a regular expression; status maps to states; changes-since shows the deleted too', async () => {
    const named = await request(`${api}/servers?name=^srv-[13]$`, { token: alice });
    expect(ids(named).sort()).toEqual([servers[0], servers[2]].sort());
    expect(
      (await request(`${api}/servers?status=ERROR&limit=1`, { token: alice })).body.servers,
    ).toHaveLength(1);
    expect((await request(`${api}/servers?status=ACTIVE`, { token: alice })).body.servers).toEqual([]);
    // a status nova does not know lists nothing before 2.38 and is refused from then on
    expect((await request(`${api}/servers?status=BOGUS`, { token: alice })).body).toEqual({ servers: [] });
    expectFault(
      await request(`${api}/servers?status=BOGUS`, { token: alice, headers: at('2.38') }),
      400,
      'badRequest',
      'Invalid status value',
    );
    expectFault(
      await request(`${api}/servers?status=DELETED`, { token: alice }),
      403,
      'forbidden',
      'Only administrators may list deleted instances',
    );
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await request(`${api}/servers?changes-since=${future}`, { token: alice })).body.servers).toEqual(
      [],
    );
    expectFault(
      await request(`${api}/servers?changes-since=yesterday`, { token: alice }),
      400,
      'badRequest',
      "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'",
    );
    const before = new Date(Date.now() - 3_600_000).toISOString();
    const gone = servers[0] as string;
    expect((await request(`${api}/servers/${gone}`, { method: 'DELETE', token: alice })).status).toBe(204);
    const live = await request(`${api}/servers/detail?sort_key=display_name&sort_dir=asc`, { token: alice });
    expect(ids(live)).not.toContain(gone);
    const changed = await request(
      `${api}/servers/detail?changes-since=${before}&sort_key=display_name&sort_dir=asc&limit=1`,
      { token: alice },
    );
    expect(changed.body.servers[0]).toMatchObject({ id: gone, status: 'DELETED' });
  });

  test('all_tenants is for admins, narrowed by tenant_id or project_id; host is an admin filter', async () => {
    expectFault(
      await request(`${api}/servers?all_tenants=1`, { token: alice }),
      403,
      'forbidden',
      "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed.",
    );
    // without all_tenants an admin sees the admin project's servers, whatever tenant_id says
    expect((await request(`${adminApi}/servers?tenant_id=${other}`, { token: admin })).body.servers).toEqual(
      [],
    );
    const everyone = await request(`${adminApi}/servers?all_tenants&name=srv-(bob|5)`, { token: admin });
    expect(ids(everyone).sort()).toEqual([bobServer, servers[4]].sort());
    for (const key of ['tenant_id', 'project_id']) {
      const one = await request(`${adminApi}/servers/detail?all_tenants=true&${key}=${other}`, {
        token: admin,
      });
      expect(ids(one)).toEqual([bobServer]);
    }
    expectFault(
      await request(`${adminApi}/servers?all_tenants=maybe`, { token: admin }),
      400,
      'badRequest',
      "Invalid input received: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    );
    // no server here has a host: the admin's filter finds none, a member's is dropped
    expect(
      (await request(`${adminApi}/servers?all_tenants=1&host=h1`, { token: admin })).body.servers,
    ).toEqual([]);
    expect((await request(`${api}/servers?host=h1`, { token: alice })).body.servers).toHaveLength(MAX_LIMIT);
  });

  test('2.52 creates with tags, shown from 2.26 and matched by the tag filters', async () => {
    const bobApi = `${stack.computeUrl}/v2.1/${other}`;
    const tagged = (name: string, tags: string[], version: string) =>
      request(`${bobApi}/servers`, {
        method: 'POST',
        token: bob,
        headers: at(version),
        body: { server: { name, flavorRef: '1', imageRef: image, networks: 'none', tags } },
      });
    const early = await tagged('srv-web', ['web'], '2.51');
    expect(early.status).toBe(400);
    expect(early.body.badRequest.message).toMatch(
      /Additional properties are not allowed \('tags' was unexpected\)$/,
    );
    const web = await tagged('srv-web', ['web', 'blue', 'web'], '2.52');
    expect(web.status).toBe(202);
    const db = await tagged('srv-db', ['db', 'blue'], '2.60');
    expect(db.status).toBe(202);
    const [webId, dbId] = [web.body.server.id as string, db.body.server.id as string];
    const shown = await request(`${bobApi}/servers/${webId}`, { token: bob, headers: at('2.26') });
    expect(shown.body.server.tags).toEqual(['web', 'blue']);
    const list = async (query: string, version = '2.26') =>
      ids(await request(`${bobApi}/servers?${query}`, { token: bob, headers: at(version) })).sort();
    expect(await list('tags=blue')).toEqual([webId, dbId].sort());
    expect(await list('tags=blue,web')).toEqual([webId]);
    expect(await list('tags-any=web,db')).toEqual([webId, dbId].sort());
    expect(await list('not-tags=blue,web')).toEqual([dbId, bobServer].sort());
    expect(await list('not-tags-any=blue')).toEqual([bobServer]);
    // before 2.26 the tag filters are not filters
    expect(await list('tags=web', '2.25')).toEqual([webId, dbId, bobServer].sort());
  });
});
