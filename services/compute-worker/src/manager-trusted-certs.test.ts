import { adminContext } from '@basalt/context';
import type { InstanceRecord } from '@basalt/db';
import pino from 'pino';
import { ComputeManager, type ComputeManagerDeps, type ComputeManagerOptions } from './manager';

/** A building instance placed on h1, with or without trusted image certificates. */
function fixture(trustedCerts: string[] | null) {
  const instance = {
    id: 'i1',
    seq: 1,
    host: 'h1',
    vmState: 'building',
    taskState: 'spawning',
    imageId: 'img',
    rootGb: 1,
    ephemeralGb: 0,
    memoryMb: 64,
    vcpus: 1,
    trustedCerts,
  } as unknown as InstanceRecord;
  const moves: Array<{ move: string; fault?: string }> = [];
  const spawned: string[] = [];
  const deps = {
    instances: {
      find: async () => instance,
      transition: async (_id: string, move: { name: string }, changes: { faultMessage?: string } = {}) => {
        moves.push({ move: move.name, ...(changes.faultMessage ? { fault: changes.faultMessage } : {}) });
        return instance;
      },
    },
    images: { source: async () => ({ path: '/images/img', format: 'raw' }) },
    storage: {
      createDisks: async () => undefined,
      paths: (name: string) => ({
        dir: `/i/${name}`,
        disk: `/i/${name}/disk`,
        diskLocal: `/i/${name}/disk.local`,
        libvirtXml: `/i/${name}/libvirt.xml`,
        consoleLog: `/i/${name}/console.log`,
        shellSocket: `/i/${name}/shell.sock`,
      }),
      writeLibvirtXml: async () => undefined,
    },
    mappings: { forInstance: async () => [] },
    hypervisor: {
      spawn: async (name: string) => {
        spawned.push(name);
      },
    },
    log: pino({ level: 'silent' }),
  } as unknown as ComputeManagerDeps;
  const options = {
    host: 'h1',
    instanceNameTemplate: 'inst-%08x',
    maxGuestMemoryMb: 0,
  } as unknown as ComputeManagerOptions;
  return { manager: new ComputeManager(deps, options), moves, spawned };
}

describe('ComputeManager.runInstance and trusted image certificates (nova 2.63)', () => {
  const log = pino({ level: 'silent' });

  test("a server with certificates is not built: this host verifies no signatures (nova's BuildAbortException)", async () => {
    const { manager, moves, spawned } = fixture(['cert-1']);
    await manager.runInstance(adminContext(), 'i1', log);
    expect(spawned).toEqual([]);
    expect(moves).toEqual([
      {
        move: 'fail',
        fault:
          'Build of instance i1 aborted: Trusted image certificates provided on host that does not support certificate validation.',
      },
    ]);
  });

  test('a server without them is spawned', async () => {
    const { manager, moves, spawned } = fixture(null);
    await manager.runInstance(adminContext(), 'i1', log);
    expect(moves).toEqual([{ move: 'spawned' }]);
    expect(spawned).toEqual(['inst-00000001']);
  });
});
