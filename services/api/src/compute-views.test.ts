import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BlockDeviceMapping, InstanceAction, InstanceActionEvent, InstanceRecord } from '@basalt/db';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { COMPUTE_MAX_VERSION } from './compute-app';
import {
  flavorDetail,
  flavorSummary,
  instanceAction,
  instanceActionEvent,
  nextLink,
  serverCreated,
  serverDetail,
  serverSummary,
  type ViewContext,
  volumeAttachment,
} from './compute-views';
import { FLAVORS, findFlavor } from './flavors';

const instance: InstanceRecord = {
  id: '6b9c4f3e-1a2b-4c3d-8e9f-0a1b2c3d4e5f',
  seq: 7,
  projectId: 'p1',
  userId: 'u1',
  displayName: 'vm2',
  flavorId: '2',
  memoryMb: 2048,
  vcpus: 1,
  rootGb: 10,
  ephemeralGb: 20,
  imageId: '11111111-2222-4333-8444-555555555555',
  host: 'compute1',
  vmState: 'active',
  taskState: null,
  faultMessage: null,
  launchedAt: new Date('2026-12-01T10:00:00.123Z'),
  createdAt: new Date('2026-12-01T09:59:00.456Z'),
  updatedAt: new Date('2026-12-01T10:00:01.789Z'),
  deleted: false,
  tags: [],
  trustedCerts: null,
};
const mapping: BlockDeviceMapping = {
  id: 'm1',
  instanceUuid: instance.id,
  volumeId: '99999999-8888-4777-8666-555555555555',
  deviceName: '/dev/vdc',
  tag: 'data',
  volumeHost: 'storage1',
  status: 'attached',
  connectionInfo: null,
  createdAt: new Date(),
  updatedAt: new Date(),
};
const action: InstanceAction = {
  action: 'extend_volume',
  instanceUuid: instance.id,
  requestId: 'req-0b7e6c1e-2a3f-4b5c-9d8e-7f6a5b4c3d2e',
  userId: 'u1',
  projectId: 'p1',
  message: null,
  startTime: new Date('2026-12-01T10:05:00.250Z'),
  updatedAt: new Date('2026-12-01T10:05:02.500Z'),
};
const events: InstanceActionEvent[] = [
  {
    event: 'compute_extend_volume',
    startTime: new Date('2026-12-01T10:05:00.300Z'),
    finishTime: new Date('2026-12-01T10:05:02.500Z'),
    result: 'Error',
    traceback: 'qemu-img: could not resize',
    host: 'compute1',
  },
  {
    event: 'compute_extend_volume',
    startTime: action.startTime,
    finishTime: null,
    result: null,
    traceback: null,
    host: 'compute1',
  },
];
const view = (version: string, isAdmin: boolean): ViewContext => ({
  baseUrl: 'http://127.0.0.1:8774',
  projectId: 'p1',
  version,
  isAdmin,
  nameTemplate: 'instance-%08x',
  flavorExtraSpecs: true,
});

describe('server views', () => {
  // the fields each microversion allows and requires: below, against tempest's schemas
  test('2.1: admins see host and instance name; launched_at is a naive datetime as nova writes it', () => {
    for (const isAdmin of [false, true]) {
      const server = serverDetail(view('2.1', isAdmin), instance, findFlavor('2'), [mapping]);
      expect(server['OS-EXT-SRV-ATTR:instance_name'] !== undefined).toBe(isAdmin);
      expect(server['OS-SRV-USG:launched_at']).toBe('2026-12-01T10:00:00.123000');
    }
    const admin = serverDetail(view('2.1', true), instance, findFlavor('2'), [mapping]);
    expect(admin).toMatchObject({
      status: 'ACTIVE',
      'OS-EXT-SRV-ATTR:host': 'compute1',
      'OS-EXT-SRV-ATTR:instance_name': 'instance-00000007',
      flavor: { id: '2' },
      created: '2026-12-01T09:59:00Z',
      'os-extended-volumes:volumes_attached': [{ id: mapping.volumeId }],
    });
  });

  test('later microversions add their fields; 2.47 embeds the flavor', () => {
    const v247 = serverDetail(view('2.47', true), instance, findFlavor('2'), [mapping]);
    expect(v247).toMatchObject({
      locked: false,
      description: null,
      tags: [],
      host_status: 'UP',
      'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
      'os-extended-volumes:volumes_attached': [{ id: mapping.volumeId, delete_on_termination: false }],
      flavor: {
        original_name: 'm1.small',
        vcpus: 1,
        ram: 2048,
        disk: 10,
        ephemeral: 20,
        swap: 0,
        extra_specs: {},
      },
    });
    // nova's HostStatus NONE for a server on no host
    expect(serverDetail(view('2.16', true), { ...instance, host: null }, undefined, []).host_status).toBe('');
    const v218 = serverDetail(view('2.18', false), instance, findFlavor('2'), []);
    expect(v218.description).toBeUndefined();
    expect(v218.locked).toBe(false);
  });

  test('an instance in error shows its fault; states map to nova statuses', () => {
    const failed = serverDetail(
      view('2.1', false),
      { ...instance, vmState: 'error', faultMessage: 'No valid host was found.' },
      findFlavor('2'),
      [],
    );
    expect(failed).toMatchObject({
      status: 'ERROR',
      fault: { code: 500, message: 'No valid host was found.' },
    });
    expect(failed.progress).toBeUndefined();
    const rebooting = serverDetail(
      view('2.1', false),
      { ...instance, taskState: 'rebooting_hard' },
      undefined,
      [],
    );
    expect(rebooting.status).toBe('HARD_REBOOT');
  });

  test('from 2.26 a server shows its own tags', () => {
    const tagged = { ...instance, tags: ['web', 'blue'] };
    expect(serverDetail(view('2.52', false), tagged, findFlavor('2'), []).tags).toEqual(['web', 'blue']);
    expect(serverDetail(view('2.25', false), tagged, findFlavor('2'), []).tags).toBeUndefined();
  });

  test('2.63 shows the trusted image certificates given at create, null when none were', () => {
    const trusting = { ...instance, trustedCerts: ['cert-1'] };
    expect(
      serverDetail(view('2.63', false), trusting, findFlavor('2'), []).trusted_image_certificates,
    ).toEqual(['cert-1']);
    expect(serverDetail(view('2.63', false), instance, findFlavor('2'), [])).toHaveProperty(
      'trusted_image_certificates',
      null,
    );
    expect(serverDetail(view('2.62', false), trusting, findFlavor('2'), [])).not.toHaveProperty(
      'trusted_image_certificates',
    );
  });

  test("a volume attachment is nova 2.1's four fields; 2.70 adds its tag", () => {
    const four = {
      id: mapping.volumeId,
      device: '/dev/vdc',
      serverId: instance.id,
      volumeId: mapping.volumeId,
    };
    expect(volumeAttachment('2.69', mapping)).toEqual(four);
    expect(volumeAttachment('2.70', mapping)).toEqual({ ...four, tag: 'data' });
    expect(volumeAttachment('2.72', { ...mapping, tag: null })).toEqual({ ...four, tag: null });
  });

  test('2.73 shows why a server is locked: null, as none is', () => {
    expect(serverDetail(view('2.73', false), instance, findFlavor('2'), [])).toMatchObject({
      locked: false,
      locked_reason: null,
    });
    expect(serverDetail(view('2.72', false), instance, findFlavor('2'), [])).not.toHaveProperty(
      'locked_reason',
    );
  });

  test('2.71 shows the server groups of a server shown alone (none here), not in lists', () => {
    expect(serverDetail(view('2.71', false), instance, findFlavor('2'), [], true).server_groups).toEqual([]);
    expect(serverDetail(view('2.71', false), instance, findFlavor('2'), [])).not.toHaveProperty(
      'server_groups',
    );
    expect(serverDetail(view('2.70', false), instance, findFlavor('2'), [], true)).not.toHaveProperty(
      'server_groups',
    );
  });
});

/**
 * tempest's compute response schemas (see fixtures/dump-tempest-compute-schemas.py for where they
 * come from), one set a microversion band as tempest's clients pick them.
 */
const FIXTURE = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'tempest-compute-schemas.json'), 'utf8'),
) as {
  bands: Array<{
    min: string;
    max: string;
    module: string;
    flavors_module: string;
    servers: Record<string, { response_body: object }>;
    flavors: Record<string, { response_body: object }>;
  }>;
};

// tempest validates with jsonschema's FormatChecker and its own iso8601-date-time check
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv, ['ipv4', 'ipv6', 'uri', 'uuid']);
ajv.addFormat(
  'iso8601-date-time',
  /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/,
);

/** Every kind of server a view meets: running, building unplaced, rebooting, failed, deleted. */
const INSTANCES: InstanceRecord[] = [
  instance,
  { ...instance, vmState: 'building', taskState: 'scheduling', host: null, launchedAt: null },
  { ...instance, taskState: 'rebooting' },
  { ...instance, vmState: 'error', faultMessage: 'No valid host was found.', host: null, launchedAt: null },
  { ...instance, vmState: 'deleted', deleted: true },
  { ...instance, flavorId: '1', ephemeralGb: 0 },
  { ...instance, tags: ['web', 'blue'] },
  { ...instance, trustedCerts: ['cert-1', 'cert-2'] },
];
function expectValid(schema: { response_body: object }, body: unknown, what: string): void {
  const validate = ajv.compile(schema.response_body);
  const ok = validate(body);
  if (!ok) throw new Error(`${what}: ${ajv.errorsText(validate.errors, { separator: '\n' })}`);
}

describe('flavor and instance action views', () => {
  test('2.55 adds the flavor description: null, as for the default flavors nova has', () => {
    const flavor = FLAVORS[0] as (typeof FLAVORS)[number];
    for (const shown of [
      flavorSummary(view('2.55', false), flavor),
      flavorDetail(view('2.60', false), flavor),
    ]) {
      expect(shown).toHaveProperty('description', null);
    }
    expect(flavorSummary(view('2.54', false), flavor)).not.toHaveProperty('description');
    expect(flavorDetail(view('2.54', false), flavor)).not.toHaveProperty('description');
  });

  test('2.58 adds when an action last changed; a traceback only for those let see it', () => {
    expect(instanceAction('2.57', action)).not.toHaveProperty('updated_at');
    expect(instanceAction('2.58', action)).toEqual({
      action: 'extend_volume',
      instance_uuid: instance.id,
      message: null,
      project_id: 'p1',
      request_id: action.requestId,
      start_time: '2026-12-01T10:05:00.250000',
      updated_at: '2026-12-01T10:05:02.500000',
      user_id: 'u1',
    });
    const [failed] = events as [InstanceActionEvent];
    expect(instanceActionEvent('2.58', failed, 'p1', true)).toHaveProperty(
      'traceback',
      'qemu-img: could not resize',
    );
    expect(instanceActionEvent('2.61', failed, 'p1', false)).toEqual({
      event: 'compute_extend_volume',
      start_time: '2026-12-01T10:05:00.300000',
      finish_time: '2026-12-01T10:05:02.500000',
      result: 'Error',
    });
  });

  test("2.62 adds the event's hostId for everyone, its host for those let see it", () => {
    const [failed] = events as [InstanceActionEvent];
    const unknown = { ...failed, host: null };
    // nova's generate_hostid: sha224 of project id and host
    const id = createHash('sha224').update('p1compute1').digest('hex');
    expect(instanceActionEvent('2.62', failed, 'p1', false)).toEqual({
      event: 'compute_extend_volume',
      start_time: '2026-12-01T10:05:00.300000',
      finish_time: '2026-12-01T10:05:02.500000',
      result: 'Error',
      hostId: id,
    });
    expect(instanceActionEvent('2.62', failed, 'p1', true)).toMatchObject({ host: 'compute1', hostId: id });
    expect(instanceActionEvent('2.62', unknown, 'p1', true)).toMatchObject({ host: null, hostId: '' });
  });

  test("2.61 shows a flavor's extra specs (none) to those the extra specs policy lets see them", () => {
    const flavor = FLAVORS[1] as (typeof FLAVORS)[number];
    expect(flavorDetail(view('2.61', false), flavor)).toHaveProperty('extra_specs', {});
    expect(flavorDetail({ ...view('2.61', false), flavorExtraSpecs: false }, flavor)).not.toHaveProperty(
      'extra_specs',
    );
    expect(flavorDetail(view('2.60', false), flavor)).not.toHaveProperty('extra_specs');
    // the list's summaries never have them
    expect(flavorSummary(view('2.62', false), flavor)).not.toHaveProperty('extra_specs');
  });

  test("a next link names the project only when the request's URL does", () => {
    const v = view('2.58', false);
    const query = { limit: '1', marker: 'old' };
    expect(
      nextLink(
        v,
        '/v2.1/p1/servers/s/os-instance-actions?limit=1',
        'servers/s/os-instance-actions',
        query,
        'r',
      ),
    ).toEqual({
      rel: 'next',
      href: 'http://127.0.0.1:8774/v2.1/p1/servers/s/os-instance-actions?limit=1&marker=r',
    });
    expect(nextLink(v, '/v2.1/servers/detail', 'servers/detail', {}, 'm').href).toBe(
      'http://127.0.0.1:8774/v2.1/servers/detail?marker=m',
    );
  });
});

describe("the compute views against tempest's response schemas", () => {
  test('the fixture covers every microversion served, band after band', () => {
    const bands = FIXTURE.bands;
    expect(bands[0]?.min).toBe('2.1');
    expect(bands.at(-1)?.max).toBe(COMPUTE_MAX_VERSION);
    bands.slice(1).forEach((band, i) => {
      const [major, minor] = (bands[i]?.max ?? '').split('.').map(Number);
      expect(band.min).toBe(`${major}.${Number(minor) + 1}`);
    });
  });

  for (const band of FIXTURE.bands) {
    for (const version of new Set([band.min, band.max])) {
      for (const isAdmin of [false, true]) {
        test(`${version} (tempest ${band.module}, ${band.flavors_module}), ${isAdmin ? 'admin' : 'member'}`, () => {
          const v = view(version, isAdmin);
          const s = band.servers;
          const details = INSTANCES.map((i) => serverDetail(v, i, findFlavor(i.flavorId), [mapping]));
          // as the routes pick: events for admins, and from 2.51 for everyone without tracebacks
          const shown = {
            ...instanceAction(version, action),
            ...(isAdmin || Number(version.split('.')[1]) >= 51
              ? { events: events.map((e) => instanceActionEvent(version, e, 'p1', isAdmin)) }
              : {}),
          };
          expectValid(s.show_instance_action as never, { instanceAction: shown }, 'show action');
          const actions = [
            instanceAction(version, action),
            instanceAction(version, { ...action, message: 'Error' }),
          ];
          const actionLinks =
            Number(version.split('.')[1]) >= 58
              ? {
                  links: [
                    nextLink(
                      v,
                      '/v2.1/p1/servers',
                      `servers/${instance.id}/os-instance-actions`,
                      { limit: '2' },
                      'r',
                    ),
                  ],
                }
              : {};
          expectValid(
            s.list_instance_actions as never,
            { instanceActions: actions, ...actionLinks },
            'actions',
          );
          const alone = INSTANCES.map((i) => serverDetail(v, i, findFlavor(i.flavorId), [mapping], true));
          for (const [n, server] of alone.entries()) {
            expectValid(s.get_server as { response_body: object }, { server }, `get_server #${n}`);
          }
          const link = [
            { rel: 'next', href: `${v.baseUrl}/v2.1/p1/servers/detail?limit=1&marker=${instance.id}` },
          ];
          expectValid(s.list_servers_detail as never, { servers: details, servers_links: link }, 'detail');
          expectValid(
            s.list_servers as never,
            { servers: INSTANCES.map((i) => serverSummary(v, i)) },
            'list',
          );
          expectValid(s.create_server as never, { server: serverCreated(v, instance) }, 'create_server');
          expectValid(
            s.attach_volume as never,
            { volumeAttachment: volumeAttachment(version, mapping) },
            'attach',
          );
          expectValid(
            s.show_volume_attachment as never,
            { volumeAttachment: volumeAttachment(version, mapping) },
            'show',
          );
          expectValid(
            s.list_volume_attachments as never,
            { volumeAttachments: [volumeAttachment(version, mapping)] },
            'list',
          );
          const f = band.flavors;
          expectValid(
            f.list_flavors as never,
            { flavors: FLAVORS.map((x) => flavorSummary(v, x)) },
            'flavors',
          );
          expectValid(
            f.list_flavors_details as never,
            { flavors: FLAVORS.map((x) => flavorDetail(v, x)) },
            'detail',
          );
          expectValid(
            f.create_update_get_flavor_details as never,
            { flavor: flavorDetail(v, FLAVORS[0] as never) },
            'show',
          );
        });
      }
    }
  }
});
