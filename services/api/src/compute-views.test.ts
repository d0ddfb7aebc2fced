import type { BlockDeviceMapping, InstanceRecord } from '@basalt/db';
import { serverDetail, type ViewContext, volumeAttachment } from './compute-views';
import { findFlavor } from './flavors';

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
};
const mapping: BlockDeviceMapping = {
  id: 'm1',
  instanceUuid: instance.id,
  volumeId: '99999999-8888-4777-8666-555555555555',
  deviceName: '/dev/vdc',
  volumeHost: 'storage1',
  status: 'attached',
  connectionInfo: null,
  createdAt: new Date(),
  updatedAt: new Date(),
};
const view = (version: string, isAdmin: boolean): ViewContext => ({
  baseUrl: 'http://127.0.0.1:8774',
  projectId: 'p1',
  version,
  isAdmin,
  nameTemplate: 'instance-%08x',
});

describe('server views', () => {
  // the fields each microversion allows and requires: compute-schemas.test.ts, against tempest's
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

  test("a volume attachment is nova 2.1's four fields", () => {
    expect(volumeAttachment(mapping)).toEqual({
      id: mapping.volumeId,
      device: '/dev/vdc',
      serverId: instance.id,
      volumeId: mapping.volumeId,
    });
  });
});
