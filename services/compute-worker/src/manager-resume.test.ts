import { RpcTimeoutError } from '@basalt/rpc';
import pino from 'pino';
import { ComputeManager, type ComputeManagerDeps, type ComputeManagerOptions } from './manager';

const OPTIONS = {
  host: 'h1',
  instanceNameTemplate: 'inst-%08x',
  resumeStalledAfterSec: 20,
  maxGuestMemoryMb: 0,
  virtType: 'qemu',
  serialShell: false,
} as unknown as ComputeManagerOptions;

/** Instance i1 (seq 1) on host h1, running, in `taskState` since `updatedAt`. */
const instanceRow = (taskState: string | null, updatedAt: Date) => ({
  id: 'i1',
  seq: 1,
  host: 'h1',
  vmState: 'active',
  taskState,
  updatedAt,
  memoryMb: 64,
  vcpus: 1,
  ephemeralGb: 0,
});

/** A host with one instance whose delete began just now and whose message never came. */
function fixture() {
  const deleted: string[] = [];
  const idleAsked: number[] = [];
  const instance = instanceRow('deleting', new Date());
  const deps = {
    instances: {
      onHost: async () => [instance],
      find: async () => instance,
      transition: async () => instance,
    },
    mappings: {
      forInstance: async () => [],
      stalledOnHost: async (_host: string, idle: number) => {
        idleAsked.push(idle);
        return [];
      },
    },
    hypervisor: {
      destroy: async (name: string) => {
        deleted.push(name);
      },
    },
    storage: { removeInstance: async () => undefined },
    connector: {},
    log: pino({ level: 'silent' }),
  } as unknown as ComputeManagerDeps;
  return { manager: new ComputeManager(deps, OPTIONS), deleted, idleAsked };
}

describe('ComputeManager.resumeStalled', () => {
  const log = pino({ level: 'silent' });

  test('leaves recent work alone: its message may still come', async () => {
    const { manager, deleted, idleAsked } = fixture();
    await manager.resumeStalled(log);
    expect(deleted).toEqual([]);
    expect(idleAsked).toEqual([20]);
  });

  test('after the broker dropped, the next sweep takes up all of it, however recent, and the one after only the stalled', async () => {
    const { manager, deleted, idleAsked } = fixture();
    manager.resumeAllSoon();
    await manager.resumeStalled(log);
    expect(deleted).toEqual(['inst-00000001']);
    expect(idleAsked).toEqual([0]);
    await manager.resumeStalled(log);
    expect(idleAsked).toEqual([0, 20]);
  });
});

/** A host whose instance is running and has an attach that sat `attaching` with no message. */
function stalledAttach(initialize: () => Promise<unknown>) {
  const steps: string[] = [];
  const instance = instanceRow(null, new Date(0));
  const mapping = {
    id: 'm1',
    instanceUuid: 'i1',
    volumeId: 'v1',
    volumeHost: 'vh',
    deviceName: '/dev/vdb',
    status: 'attaching',
    connectionInfo: null,
  };
  const info = {
    driver_volume_type: 'iscsi',
    data: { target_portal: '127.0.0.1:3260', target_iqn: 'iqn.x:v1', target_lun: 1, auth_password: 'p' },
  };
  const deps = {
    instances: { onHost: async () => [instance], find: async () => instance },
    mappings: {
      stalledOnHost: async () => [mapping],
      find: async () => mapping,
      recordConnection: async () => steps.push('record'),
      transition: async () => steps.push('mapping attached'),
      remove: async () => steps.push('mapping removed'),
    },
    volumes: { transition: async () => steps.push('volume detaching') },
    volumeRpc: {
      initialize_connection: async () => {
        steps.push('initialize_connection');
        await initialize();
        return info;
      },
      attach_volume: async () => steps.push('attach_volume'),
      terminate_connection: async () => steps.push('terminate_connection'),
      detach_volume: async () => steps.push('detach_volume'),
    },
    hypervisor: { attachDisk: async () => steps.push('hot-plug') },
    connector: {
      properties: () => ({ ip: '127.0.0.1', initiator: 'iqn.x:h1', host: 'h1' }),
      prepare: async () => steps.push('prepare'),
      connect: async () => steps.push('connect'),
      describe: () => ({ source: { type: 'block', path: '/dev/disk/by-path/v1' } }),
    },
    log: pino({ level: 'silent' }),
  } as unknown as ComputeManagerDeps;
  return { manager: new ComputeManager(deps, OPTIONS), steps };
}

describe('ComputeManager.resumeStalled and an attach whose message was lost', () => {
  const log = pino({ level: 'silent' });

  test('the attach is finished on the instance it was asked for, not undone', async () => {
    const { manager, steps } = stalledAttach(async () => undefined);
    await manager.resumeStalled(log);
    expect(steps).toEqual([
      'initialize_connection',
      'prepare',
      'record',
      'connect',
      'hot-plug',
      'attach_volume',
      'mapping attached',
    ]);
  });

  test('with the volume host still unreachable it stays attaching for the next sweep', async () => {
    const { manager, steps } = stalledAttach(async () => {
      throw new RpcTimeoutError('no reply in 60000 ms');
    });
    await manager.resumeStalled(log);
    expect(steps).toEqual(['initialize_connection', 'prepare']);
  });
});
