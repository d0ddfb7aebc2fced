import { randomBytes } from 'node:crypto';
import { adminContext } from '@basalt/context';
import { SecretBox, type VolumeRecord, type VolumeRepository } from '@basalt/db';
import { BasaltError } from '@basalt/errors';
import pino from 'pino';
import { VolumeManager, type VolumeManagerDeps } from './manager';

const log = pino({ level: 'silent' });

/** A volume on host-a being created, and a record of what the manager did to it. */
function fixture(
  options: {
    markCreated?: () => Promise<boolean[]>;
    createExport?: (spec: { chapUser: string; chapPassword: string }) => Promise<void>;
  } = {},
) {
  const offered: string[] = [];
  const volume = {
    id: 'v1',
    backendName: 'volume-00000001',
    size: 1,
    status: 'creating',
    host: 'host-a',
    providerAuth: null,
  } as unknown as VolumeRecord;
  const done: string[] = [];
  const volumes = {
    claimForCreate: async (_host: string, claims: { id: string; providerAuth: string }[]) =>
      claims.map((c) => {
        offered.push(c.providerAuth);
        return { volume: { ...volume, providerAuth: c.providerAuth }, targetNum: 7 };
      }),
    markCreated:
      options.markCreated ??
      (async (created: unknown[]) => {
        done.push('available');
        return created.map(() => true);
      }),
    transition: async (_id: string, move: { to: string }, changes: { statusReason?: string }) => {
      done.push(`${move.to}: ${changes.statusReason}`);
      return volume;
    },
  } as unknown as VolumeRepository;
  const deps = {
    volumes,
    driver: { createVolume: async () => done.push('storage'), backingPath: (n: string) => `/v/${n}` },
    target: {
      createExport:
        options.createExport ??
        (async () => {
          done.push('export');
        }),
    },
    secrets: new SecretBox([`k1:${randomBytes(32).toString('base64')}`]),
    log,
  } as unknown as VolumeManagerDeps;
  const manager = new VolumeManager(deps, {
    host: 'host-a',
    availabilityZone: 'nova',
    backendName: 'file',
    iqnPrefix: 'iqn.2010-10.org.openstack:',
    portal: { ip: '127.0.0.1', port: 3260 },
    maxTargets: 100,
    reservedPercentage: 0,
    maxOverSubscriptionRatio: 1,
    resumeStalledAfterSec: 300,
  });
  return { manager, done, offered };
}

describe('VolumeManager CHAP secrets', () => {
  test('the secret goes to the database sealed, and to the export in clear', async () => {
    let exported: { chapUser: string; chapPassword: string } | undefined;
    const { manager, offered } = fixture({
      createExport: async (spec) => {
        exported = spec;
      },
    });
    await manager.createVolume(adminContext(), 'v1', log);
    expect(offered).toHaveLength(1);
    expect(offered[0]).toMatch(/^enc:v1:k1:/);
    expect(exported?.chapPassword).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(offered[0]).not.toContain(exported?.chapPassword as string);
    expect(offered[0]).not.toContain(exported?.chapUser as string);
  });
});

describe('VolumeManager.createVolume failures', () => {
  test("a storage or export failure is the volume's: it goes to error with the reason", async () => {
    const { manager, done } = fixture({
      createExport: async () => {
        throw new BasaltError('tgtd could not create target 7: target exists');
      },
    });
    await manager.createVolume(adminContext(), 'v1', log);
    expect(done).toEqual(['storage', 'error: create failed: tgtd could not create target 7: target exists']);
  });

  test("the database's passing trouble is not: it is thrown for the retry and the volume stays creating", async () => {
    let calls = 0;
    const { manager, done } = fixture({
      markCreated: async () => {
        calls++;
        if (calls === 1) throw new Error('Connection terminated unexpectedly');
        done.push('available');
        return [true];
      },
    });
    await expect(manager.createVolume(adminContext(), 'v1', log)).rejects.toThrow('Connection terminated');
    expect(done).toEqual(['storage', 'export']);
    // the retry redoes the idempotent steps and finishes
    await manager.createVolume(adminContext(), 'v1', log);
    expect(done).toEqual(['storage', 'export', 'storage', 'export', 'available']);
  });
});
