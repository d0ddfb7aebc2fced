import pino from 'pino';
import { ComputeManager, type ComputeManagerDeps, type ComputeManagerOptions } from './manager';

/** A host with one instance whose delete began just now and whose message never came. */
function fixture() {
  const deleted: string[] = [];
  const idleAsked: number[] = [];
  const instance = {
    id: 'i1',
    seq: 1,
    host: 'h1',
    vmState: 'active',
    taskState: 'deleting',
    updatedAt: new Date(),
    memoryMb: 64,
    vcpus: 1,
    ephemeralGb: 0,
  };
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
  const options = {
    host: 'h1',
    instanceNameTemplate: 'inst-%08x',
    resumeStalledAfterSec: 20,
    maxGuestMemoryMb: 0,
    virtType: 'qemu',
    serialShell: false,
  } as unknown as ComputeManagerOptions;
  return { manager: new ComputeManager(deps, options), deleted, idleAsked };
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
