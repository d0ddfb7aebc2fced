import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { InstanceAction, InstanceActionPage, InstanceFilter, InstanceRecord } from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Authenticator } from './auth';
import type { CreateServerRequest, ServerEvent } from './compute-api';
import { buildComputeApp } from './compute-app';
import { Policy } from './policy';
import { POLICY_DEFAULTS } from './policy-defaults';
import { RateLimiter } from './rate-limit';

const SERVER = '6b9c4f3e-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
const VOLUME = '99999999-8888-4777-8666-555555555555';
const IMAGE = '11111111-2222-4333-8444-555555555555';
const instance = {
  id: SERVER,
  seq: 1,
  projectId: 'p1',
  userId: 'u1',
  displayName: 'vm',
  flavorId: '1',
  imageId: IMAGE,
  host: 'compute1',
  vmState: 'active',
  taskState: null,
  faultMessage: null,
  launchedAt: null,
  createdAt: new Date('2026-12-01T10:00:00Z'),
  updatedAt: new Date('2026-12-01T10:00:00Z'),
  deleted: false,
  tags: [],
  trustedCerts: null,
} as unknown as InstanceRecord;
const action = (requestId: string): InstanceAction => ({
  action: 'extend_volume',
  instanceUuid: SERVER,
  requestId,
  userId: 'u1',
  projectId: 'p1',
  message: null,
  startTime: new Date('2026-12-01T10:05:00Z'),
  updatedAt: new Date('2026-12-01T10:06:00Z'),
});

/** `X-Auth-Token: role:project` names the caller. */
const authenticator: Authenticator = {
  challenge: () => undefined,
  async authenticate(token) {
    const [role, projectId] = (token ?? '').split(':') as [string, string];
    return { userId: `${role}-user`, projectId, roles: [role], isAdmin: role === 'admin' };
  },
};

const serving: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(serving.splice(0).map((app) => app.close()));
});

/**
 * The real compute app on a loopback port over handlers' dependencies that record what the
 * routes hand them: what a microversion lets through, and how it is answered.
 */
async function computeApp(actionCount = 1) {
  const seen = {
    creates: [] as CreateServerRequest[],
    attaches: [] as Array<string | undefined>,
    events: [] as ServerEvent[],
    pages: [] as InstanceActionPage[],
    filters: [] as InstanceFilter[],
  };
  const app = buildComputeApp(
    {
      log: pino({ level: 'silent' }),
      bodyLimit: 65536,
      authenticator,
      policy: new Policy(POLICY_DEFAULTS),
      rateLimiter: new RateLimiter({ ratePerSec: 0, burst: 1 }),
    },
    {
      api: {
        get: async () => instance,
        mappingsOf: async () => [],
        create: async (_ctx: unknown, request: CreateServerRequest) => {
          seen.creates.push(request);
          return { ...instance, tags: request.tags ?? [] };
        },
        attachVolume: async (_c: unknown, _s: string, volumeId: string, device: string, tag?: string) => {
          seen.attaches.push(tag);
          return { volumeId, instanceUuid: SERVER, deviceName: device ?? '/dev/vdb', tag: tag ?? null };
        },
        externalEvents: async (_ctx: unknown, events: ServerEvent[]) => {
          seen.events.push(...events);
          return events.map((e) => ({ ...e, status: 'completed', code: 200 }));
        },
      },
      instances: {
        list: async (filter: InstanceFilter) => {
          seen.filters.push(filter);
          return [];
        },
      },
      actions: {
        list: async (_id: string, page?: InstanceActionPage) => {
          if (page) seen.pages.push(page);
          if (page?.marker === 'gone') throw new InvalidInputError('Marker gone could not be found.');
          return Array.from({ length: actionCount }, (_, i) => action(`req-${i}`));
        },
        find: async (_id: string, requestId: string) => ({
          action: action(requestId),
          events: [
            {
              event: 'compute_extend_volume',
              startTime: new Date('2026-12-01T10:05:01Z'),
              finishTime: new Date('2026-12-01T10:06:00Z'),
              result: 'Error',
              traceback: 'Traceback: resize failed',
              host: 'compute1',
            },
          ],
        }),
      },
      maxLimit: 2,
      nameTemplate: 'instance-%08x',
      baseUrl: () => 'http://compute',
    } as never,
  );
  serving.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const request = async (
    method: string,
    path: string,
    options: { version?: string; role?: string; body?: unknown } = {},
  ) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        'x-auth-token': `${options.role ?? 'member'}:p1`,
        ...(options.version ? { 'openstack-api-version': `compute ${options.version}` } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { request, seen };
}

const badRequest = (message: string) => ({ badRequest: { code: 400, message } });

describe('the microversions up to 2.73', () => {
  test('the version document reports 2.73; 2.74 is not served', async () => {
    const { request } = await computeApp();
    expect((await request('GET', '/')).body.versions[0]).toMatchObject({
      version: '2.73',
      min_version: '2.1',
    });
    expect((await request('GET', '/v2.1/p1/flavors', { version: '2.73' })).status).toBe(200);
    expect((await request('GET', '/v2.1/p1/flavors', { version: '2.74' })).status).toBe(406);
    expect((await request('GET', '/v2.1/p1/flavors', { version: 'latest' })).body.flavors[0]).toHaveProperty(
      'description',
      null,
    );
  });

  test('2.52: a create may give tags, checked as nova checks them; before, they are unexpected', async () => {
    const { request, seen } = await computeApp();
    const server = { name: 'vm', imageRef: IMAGE, flavorRef: '1', tags: ['web', 'blue'] };
    const before = await request('POST', '/v2.1/p1/servers', { version: '2.51', body: { server } });
    expect(before).toEqual({
      status: 400,
      body: badRequest(
        "Invalid input for field/attribute server. Value: {'name': 'vm', 'imageRef': '11111111-2222-4333-8444-555555555555', 'flavorRef': '1', 'tags': ['web', 'blue']}. Additional properties are not allowed ('tags' was unexpected)",
      ),
    });
    expect(seen.creates).toEqual([]);
    expect((await request('POST', '/v2.1/p1/servers', { version: '2.52', body: { server } })).status).toBe(
      202,
    );
    expect(seen.creates).toEqual([{ name: 'vm', imageRef: IMAGE, flavorRef: '1', tags: ['web', 'blue'] }]);

    const refused = async (tags: unknown) =>
      (await request('POST', '/v2.1/p1/servers', { version: '2.60', body: { server: { ...server, tags } } }))
        .body.badRequest?.message;
    expect(await refused('web')).toBe(
      "Invalid input for field/attribute tags. Value: web. 'web' is not of type 'array'",
    );
    expect(await refused(['ok', 'a/b'])).toBe(
      "Invalid input for field/attribute 1. Value: a/b. 'a/b' does not match '^[^,/]*$'",
    );
    expect(await refused(['a,b'])).toBe(
      "Invalid input for field/attribute 0. Value: a,b. 'a,b' does not match '^[^,/]*$'",
    );
    expect(await refused([''])).toBe("Invalid input for field/attribute 0. Value: . '' should be non-empty");
    expect(await refused([7])).toBe(
      "Invalid input for field/attribute 0. Value: 7. 7 is not of type 'string'",
    );
    expect(await refused(['x'.repeat(61)])).toBe(
      `Invalid input for field/attribute 0. Value: ${'x'.repeat(61)}. '${'x'.repeat(61)}' is too long`,
    );
    const many = Array.from({ length: 51 }, (_, i) => `t${i}`);
    expect(await refused(many)).toBe(
      `Invalid input for field/attribute tags. Value: [${many.map((t) => `'${t}'`).join(', ')}]. [${many
        .map((t) => `'${t}'`)
        .join(', ')}] is too long`,
    );
    expect(await refused(many.slice(0, 50))).toBeUndefined();
    expect(seen.creates).toHaveLength(2);
  });

  test('2.63: a create may give trusted image certificates, checked as nova checks them', async () => {
    const { request, seen } = await computeApp();
    const server = { name: 'vm', imageRef: IMAGE, flavorRef: '1' };
    const create = (certs: unknown, version = '2.63', role = 'member') =>
      request('POST', '/v2.1/p1/servers', {
        version,
        role,
        body: { server: { ...server, trusted_image_certificates: certs } },
      });
    const early = await create(['c1'], '2.62');
    expect(early.body.badRequest.message).toMatch(
      /Additional properties are not allowed \('trusted_image_certificates' was unexpected\)$/,
    );
    expect((await create(['c1', 'c2'])).status).toBe(202);
    // null is no certificates
    expect((await create(null)).status).toBe(202);
    expect(seen.creates.map((c) => c.trustedCerts)).toEqual([['c1', 'c2'], undefined]);
    const refused = async (certs: unknown) => (await create(certs)).body.badRequest?.message;
    expect(await refused('c1')).toBe(
      "Invalid input for field/attribute trusted_image_certificates. Value: c1. 'c1' is not of type 'array', 'null'",
    );
    expect(await refused([])).toBe(
      'Invalid input for field/attribute trusted_image_certificates. Value: []. [] should be non-empty',
    );
    expect(await refused(['a', 'a'])).toBe(
      "Invalid input for field/attribute trusted_image_certificates. Value: ['a', 'a']. ['a', 'a'] has non-unique elements",
    );
    expect(await refused(['a', ''])).toBe(
      "Invalid input for field/attribute 1. Value: . '' should be non-empty",
    );
    expect(await refused([3])).toBe(
      "Invalid input for field/attribute 0. Value: 3. 3 is not of type 'string'",
    );
    const many = Array.from({ length: 51 }, (_, i) => `c${i}`);
    expect(await refused(many)).toMatch(
      /^Invalid input for field\/attribute trusted_image_certificates\. .* is too long$/,
    );
    expect(seen.creates).toHaveLength(2);
  });

  test('2.49: an attach may tag the device; before, the tag is unexpected', async () => {
    const { request, seen } = await computeApp();
    const path = `/v2.1/p1/servers/${SERVER}/os-volume_attachments`;
    const body = { volumeAttachment: { volumeId: VOLUME, tag: 'data' } };
    expect((await request('POST', path, { version: '2.48', body })).body).toEqual(
      badRequest(
        `Invalid input for field/attribute volumeAttachment. Value: {'volumeId': '${VOLUME}', 'tag': 'data'}. Additional properties are not allowed ('tag' was unexpected)`,
      ),
    );
    const attached = await request('POST', path, { version: '2.49', body });
    // nova shows the tag only from 2.70
    expect(attached).toEqual({
      status: 200,
      body: { volumeAttachment: { id: VOLUME, device: '/dev/vdb', serverId: SERVER, volumeId: VOLUME } },
    });
    expect(
      (await request('POST', path, { version: '2.1', body: { volumeAttachment: { volumeId: VOLUME } } }))
        .status,
    ).toBe(200);
    const bad = await request('POST', path, {
      version: '2.60',
      body: { volumeAttachment: { volumeId: VOLUME, tag: 'a/b' } },
    });
    expect(bad.body).toEqual(
      badRequest("Invalid input for field/attribute tag. Value: a/b. 'a/b' does not match '^[^,/]*$'"),
    );
    // 2.70 shows the tag, null when none was given
    const tagged = await request('POST', path, { version: '2.70', body });
    expect(tagged.body.volumeAttachment).toEqual({
      id: VOLUME,
      device: '/dev/vdb',
      serverId: SERVER,
      volumeId: VOLUME,
      tag: 'data',
    });
    const plain = await request('POST', path, {
      version: '2.72',
      body: { volumeAttachment: { volumeId: VOLUME } },
    });
    expect(plain.body.volumeAttachment.tag).toBeNull();
    expect(seen.attaches).toEqual(['data', undefined, 'data', undefined]);
  });

  test('2.51: volume-extended is an event name from 2.51 on', async () => {
    const { request, seen } = await computeApp();
    const body = { events: [{ name: 'volume-extended', server_uuid: SERVER, tag: VOLUME }] };
    const old = await request('POST', '/v2.1/os-server-external-events', {
      role: 'admin',
      version: '2.50',
      body,
    });
    expect(old.body).toEqual(
      badRequest(
        "Invalid input for field/attribute name. Value: volume-extended. 'volume-extended' is not one of ['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted']",
      ),
    );
    expect(seen.events).toEqual([]);
    const now = await request('POST', '/v2.1/os-server-external-events', {
      role: 'admin',
      version: '2.51',
      body,
    });
    expect(now.status).toBe(200);
    expect(seen.events).toEqual([{ name: 'volume-extended', server_uuid: SERVER, tag: VOLUME }]);
  });

  test("2.51: everyone sees an action's events; the traceback stays the events policy's", async () => {
    const { request } = await computeApp();
    const path = `/v2.1/p1/servers/${SERVER}/os-instance-actions/req-1`;
    const show = async (version: string, role: string) =>
      (await request('GET', path, { version, role })).body.instanceAction;
    expect(await show('2.50', 'member')).not.toHaveProperty('events');
    expect((await show('2.50', 'admin')).events[0]).toHaveProperty('traceback', 'Traceback: resize failed');
    expect((await show('2.51', 'member')).events).toEqual([
      {
        event: 'compute_extend_volume',
        start_time: '2026-12-01T10:05:01.000000',
        finish_time: '2026-12-01T10:06:00.000000',
        result: 'Error',
      },
    ]);
    expect((await show('2.51', 'admin')).events[0]).toHaveProperty('traceback', 'Traceback: resize failed');
    expect(await show('2.57', 'member')).not.toHaveProperty('updated_at');
    expect(await show('2.58', 'member')).toHaveProperty('updated_at', '2026-12-01T10:06:00.000000');
    // 2.62: the host for admins, its hash with the project for everyone
    const hostId = createHash('sha224').update('p1compute1').digest('hex');
    expect((await show('2.61', 'admin')).events[0]).not.toHaveProperty('hostId');
    expect((await show('2.62', 'member')).events[0]).toEqual(
      expect.not.objectContaining({ host: expect.anything() }),
    );
    expect((await show('2.62', 'member')).events[0]).toHaveProperty('hostId', hostId);
    expect((await show('2.62', 'admin')).events[0]).toMatchObject({ host: 'compute1', hostId });
  });

  test('2.61: flavor detail and show give extra specs (none) to readers, never the list', async () => {
    const { request } = await computeApp();
    const detail = await request('GET', '/v2.1/p1/flavors/detail', { version: '2.61', role: 'reader' });
    expect(detail.body.flavors[0]).toHaveProperty('extra_specs', {});
    // a caller the extra specs policy does not let see them (no reader role) sees none
    const guest = await request('GET', '/v2.1/p1/flavors/detail', { version: '2.61', role: 'guest' });
    expect(guest.status).toBe(200);
    expect(guest.body.flavors[0]).not.toHaveProperty('extra_specs');
    expect((await request('GET', '/v2.1/p1/flavors/1', { version: '2.61' })).body.flavor).toHaveProperty(
      'extra_specs',
      {},
    );
    expect((await request('GET', '/v2.1/p1/flavors/1', { version: '2.60' })).body.flavor).not.toHaveProperty(
      'extra_specs',
    );
    expect(
      (await request('GET', '/v2.1/p1/flavors', { version: '2.61' })).body.flavors[0],
    ).not.toHaveProperty('extra_specs');
  });

  test('2.58: actions are paged by limit and marker and filtered by changes-since', async () => {
    const { request, seen } = await computeApp(2);
    const path = `/v2.1/p1/servers/${SERVER}/os-instance-actions`;
    // before 2.58 the query is not read at all
    const old = await request('GET', `${path}?limit=x&foo=1`, { version: '2.57' });
    expect(old.status).toBe(200);
    expect(old.body.instanceActions[0]).not.toHaveProperty('updated_at');
    expect(old.body).not.toHaveProperty('links');
    expect(seen.pages).toEqual([]);

    const paged = await request('GET', `${path}?marker=req-9&limit=5&changes-since=2026-12-01T10:00:00`, {
      version: '2.58',
    });
    expect(seen.pages).toEqual([
      { limit: 2, marker: 'req-9', changesSince: new Date('2026-12-01T10:00:00Z') },
    ]);
    expect(paged.body.instanceActions.map((a: { request_id: string }) => a.request_id)).toEqual([
      'req-0',
      'req-1',
    ]);
    expect(paged.body.instanceActions[0].updated_at).toBe('2026-12-01T10:06:00.000000');
    // a full page links the next, the query's parameters in name order and the marker replaced
    expect(paged.body.links).toEqual([
      {
        rel: 'next',
        href: `http://compute/v2.1/p1/servers/${SERVER}/os-instance-actions?changes-since=2026-12-01T10%3A00%3A00&limit=5&marker=req-1`,
      },
    ]);
    // a limit over [api] max_limit is the max_limit, and that page is full too
    const capped = await request('GET', `${path}?limit=3`, { version: '2.58' });
    expect(capped.body.links).toEqual([expect.objectContaining({ rel: 'next' })]);

    const refused = async (query: string) =>
      (await request('GET', `${path}?${query}`, { version: '2.60' })).body.badRequest?.message;
    expect(await refused('limit=x')).toBe(
      "Invalid input for query parameters limit. Value: x. 'x' does not match '^[0-9]*$'",
    );
    expect(await refused('limit=-1')).toBe(
      "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
    );
    expect(await refused('limit=1&limit=2')).toBe(
      "Invalid input for query parameters limit. Value: ['1', '2']. ['1', '2'] is too long",
    );
    expect(await refused('changes-since=yesterday')).toBe(
      "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'",
    );
    expect(await refused('sort_key=action')).toBe(
      "Additional properties are not allowed ('sort_key' was unexpected)",
    );
    expect(await refused('marker=gone')).toBe('Marker gone could not be found.');
  });

  test('2.58: a page shorter than the limit has no next link', async () => {
    const { request } = await computeApp(1);
    const path = `/v2.1/servers/${SERVER}/os-instance-actions`;
    const one = await request('GET', `${path}?limit=2`, { version: '2.58' });
    expect(one.body.instanceActions).toHaveLength(1);
    expect(one.body).not.toHaveProperty('links');
  });

  test('2.66: changes-before bounds server and action lists; it may not come before changes-since', async () => {
    const { request, seen } = await computeApp();
    await request('GET', '/v2.1/p1/servers?changes-before=2026-12-02T00:00:00Z', { version: '2.66' });
    await request('GET', '/v2.1/p1/servers?changes-before=2026-12-02T00:00:00Z', { version: '2.65' });
    // the deleted are listed too, as with changes-since; before 2.66 the name is not a filter
    expect(seen.filters[0]).toEqual({ projectId: 'p1', changesBefore: new Date('2026-12-02T00:00:00Z') });
    expect(seen.filters[1]).toEqual({ projectId: 'p1', deleted: false });
    const window = 'changes-since=2026-12-02T00:00:00Z&changes-before=2026-12-01T00:00:00Z';
    const inverted = await request('GET', `/v2.1/p1/servers?${window}`, { version: '2.66' });
    expect(inverted.body).toEqual(
      badRequest('The value of changes-since must be less than or equal to changes-before.'),
    );
    const bad = await request('GET', '/v2.1/p1/servers?changes-before=soon', { version: '2.66' });
    expect(bad.body).toEqual(
      badRequest(
        "Invalid input for query parameters changes-before. Value: soon. 'soon' is not a 'date-time'",
      ),
    );

    const actions = `/v2.1/p1/servers/${SERVER}/os-instance-actions`;
    expect(
      (await request('GET', `${actions}?changes-before=2026-12-02T00:00:00Z`, { version: '2.65' })).body,
    ).toEqual(badRequest("Additional properties are not allowed ('changes-before' was unexpected)"));
    const listed = await request('GET', `${actions}?changes-before=2026-12-02T00:00:00Z`, {
      version: '2.66',
    });
    expect(listed.status).toBe(200);
    expect(seen.pages).toEqual([{ limit: 2, changesBefore: new Date('2026-12-02T00:00:00Z') }]);
    expect((await request('GET', `${actions}?${window}`, { version: '2.66' })).body).toEqual(
      badRequest('The value of changes-since must be less than or equal to changes-before.'),
    );
  });

  test('2.71: a server shown alone names its server groups (none); the detail list does not', async () => {
    const { request } = await computeApp();
    const shown = await request('GET', `/v2.1/p1/servers/${SERVER}`, { version: '2.71' });
    expect(shown.body.server.server_groups).toEqual([]);
    const before = await request('GET', `/v2.1/p1/servers/${SERVER}`, { version: '2.70' });
    expect(before.body.server).not.toHaveProperty('server_groups');
  });

  test('2.26 on: the tag filters of a server list are comma-separated tags', async () => {
    const { request, seen } = await computeApp();
    await request('GET', '/v2.1/p1/servers?tags=a,b&tags-any=c&not-tags=d&not-tags-any=e,f', {
      version: '2.26',
    });
    await request('GET', '/v2.1/p1/servers?tags=a', { version: '2.25' });
    expect(seen.filters[0]).toMatchObject({
      tags: ['a', 'b'],
      tagsAny: ['c'],
      notTags: ['d'],
      notTagsAny: ['e', 'f'],
    });
    expect(seen.filters[1]).not.toHaveProperty('tags');
  });
});
