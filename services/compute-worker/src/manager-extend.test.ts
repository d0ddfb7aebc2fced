import { adminContext } from '@basalt/context';
import pino from 'pino';
import { ComputeManager, type ComputeManagerDeps, type ComputeManagerOptions } from './manager';

const CONNECTION = {
  driver_volume_type: 'iscsi',
  data: {
    target_portal: '127.0.0.1:3260',
    target_iqn: 'iqn.2010-10.org.openstack:volume-00000001',
    target_lun: 1,
    volume_id: 'v1',
    auth_method: 'CHAP',
    auth_username: 'user0001',
    auth_password: 'redacted',
  },
};

/** One running instance with volume v1 attached as vdc, grown to 3 GB on its host. */
function fixture(options: { attached?: boolean; resizeFails?: boolean } = {}) {
  const events: Array<{ what: string; failure?: string }> = [];
  const resized: Array<[string, string, number]> = [];
  const instance = { id: 'i1', seq: 1, host: 'h1', vmState: 'active', taskState: null };
  const mapping = {
    id: 'm1',
    instanceUuid: 'i1',
    volumeId: 'v1',
    deviceName: '/dev/vdc',
    status: options.attached === false ? 'attaching' : 'attached',
    connectionInfo: CONNECTION,
  };
  const deps = {
    instances: { find: async () => instance },
    mappings: { forVolume: async () => mapping },
    volumes: { get: async () => ({ id: 'v1', size: 3 }) },
    actions: {
      startEvent: async (_i: string, _r: string, event: string, host: string) => {
        events.push({ what: `start ${event} on ${host}` });
        return true;
      },
      finishEvent: async (_i: string, _r: string, event: string, failure?: string) => {
        events.push({ what: `finish ${event}`, ...(failure === undefined ? {} : { failure }) });
      },
    },
    connector: { extend: async () => undefined },
    hypervisor: {
      resizeDisk: async (name: string, target: string, bytes: number) => {
        if (options.resizeFails) throw new Error('virsh blockresize failed: no such disk');
        resized.push([name, target, bytes]);
        return true;
      },
    },
    log: pino({ level: 'silent' }),
  } as unknown as ComputeManagerDeps;
  const managerOptions = {
    host: 'h1',
    instanceNameTemplate: 'inst-%08x',
  } as unknown as ComputeManagerOptions;
  return { manager: new ComputeManager(deps, managerOptions), events, resized };
}

describe('ComputeManager.extendVolume', () => {
  const log = pino({ level: 'silent' });

  test("resizes the guest's disk to the volume's new size, recorded as compute_extend_volume Success", async () => {
    const { manager, events, resized } = fixture();
    await manager.extendVolume(adminContext(), 'i1', 'v1', log);
    expect(resized).toEqual([['inst-00000001', 'vdc', 3 * 2 ** 30]]);
    expect(events).toEqual([
      { what: 'start compute_extend_volume on h1' },
      { what: 'finish compute_extend_volume' },
    ]);
  });

  test('a failure ends the event in Error with the reason; a volume not attached is not resized', async () => {
    const failing = fixture({ resizeFails: true });
    await failing.manager.extendVolume(adminContext(), 'i1', 'v1', log);
    expect(failing.events[1]).toEqual({
      what: 'finish compute_extend_volume',
      failure: 'virsh blockresize failed: no such disk',
    });
    const unattached = fixture({ attached: false });
    await unattached.manager.extendVolume(adminContext(), 'i1', 'v1', log);
    expect(unattached.resized).toEqual([]);
    expect(unattached.events[1]?.failure).toMatch(/not attached to instance i1/);
  });
});
