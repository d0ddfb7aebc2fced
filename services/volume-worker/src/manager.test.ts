import { randomBytes } from 'node:crypto';
import { adminContext } from '@basalt/context';
import type { ConnectionInfo } from '@basalt/contracts';
import {
  type ChapCredentials,
  chapCredentials,
  chapProviderAuth,
  type Move,
  SecretBox,
  SecretBoxError,
  type SnapshotRecord,
  type SnapshotStatus,
  sealProviderAuth,
  type VolumeChanges,
  type VolumeRecord,
  type VolumeStatus,
} from '@basalt/db';
import { BasaltError, NotFoundError } from '@basalt/errors';
import pino from 'pino';
import { VolumeManager, type VolumeManagerDeps } from './manager';
import type { ExportRef, ExportSpec } from './targets/iscsi-target';
import { TgtdUnavailableError } from './targets/tgtd-control';

const log = pino({ level: 'silent' });
const IQN = 'iqn.2010-10.org.openstack:volume-00000001';
const AUTH = 'CHAP UserName1234 Secret1234567890';
const connector = { ip: '10.0.0.2', initiator: 'iqn.2026-11.test:compute-1', host: 'compute-1' };

const volumeRow = (over: Partial<VolumeRecord> = {}): VolumeRecord =>
  ({
    id: 'v1',
    backendName: 'volume-00000001',
    size: 1,
    status: 'creating',
    host: 'host-a',
    providerAuth: AUTH,
    extendTo: null,
    updatedAt: new Date(0),
    ...over,
  }) as VolumeRecord;

const snapshotRow = (over: Partial<SnapshotRecord> = {}): SnapshotRecord =>
  ({
    id: 's1',
    volumeId: 'v1',
    backendName: 'snapshot-s1',
    volumeSize: 1,
    status: 'creating',
    host: 'host-a',
    updatedAt: new Date(0),
    ...over,
  }) as SnapshotRecord;

/** Resolves when `release` is called: holds a step of the manager's in flight. */
const gate = () => {
  let release = () => {};
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { opened, release };
};

/**
 * A manager on host-a over in-memory repositories that move states the way the SQL does, and a
 * record (`done`) of every change it made to storage, exports and rows.
 */
function fixture(initial: VolumeRecord[] = [volumeRow()], initialSnapshots: SnapshotRecord[] = []) {
  const rows = new Map(initial.map((v) => [v.id, v]));
  const snapshotRows = new Map(initialSnapshots.map((s) => [s.id, s]));
  const done: string[] = [];
  const offered: string[] = [];
  const exported: ExportSpec[] = [];
  const live = new Map<string, string>(); // initiator → ip
  const served = new Map<string, number>(); // IQN → tid tgtd serves
  const targetNums = new Map<string, number | null>([['v1', 7]]);
  const fail: { storage?: Error; export?: Error; markCreated?: Error[]; onHost?: Error[] } = {};
  let attachResult = true;
  let detachResult: 'available' | 'in-use' | undefined = 'available';
  let storageGate: Promise<void> | undefined;

  const at = (id: string, statuses: readonly string[]) => {
    const v = rows.get(id);
    return v && v.host === 'host-a' && statuses.includes(v.status) ? v : undefined;
  };
  const reads: string[] = [];
  const volumes = {
    find: async (id: string) => {
      reads.push(id);
      return rows.get(id);
    },
    get: async (id: string) => {
      const v = rows.get(id);
      if (!v) throw new NotFoundError(`Volume ${id} could not be found.`);
      return v;
    },
    // the reseal's recovery of rows that do not open (the SQL and the other rows: its own test)
    resealSecrets: async (
      _host: string,
      box: SecretBox,
      unopenable: (id: string, error: SecretBoxError) => Promise<ChapCredentials | undefined>,
    ) => {
      let resealed = 0;
      for (const v of rows.values()) {
        try {
          chapCredentials(box, v);
        } catch (error) {
          if (!(error instanceof SecretBoxError)) throw error;
          const recovered = await unopenable(v.id, error);
          if (!recovered) continue;
          rows.set(v.id, { ...v, providerAuth: sealProviderAuth(box, v.id, chapProviderAuth(recovered)) });
          resealed++;
        }
      }
      return resealed;
    },
    onHost: async (_host: string, statuses: readonly string[], idleForSec = 0) => {
      const error = fail.onHost?.shift();
      if (error) throw error;
      return [...rows.values()].filter(
        (v) => statuses.includes(v.status) && v.updatedAt.getTime() <= Date.now() - idleForSec * 1000,
      );
    },
    claimForCreate: async (_host: string, claims: { id: string; providerAuth: string }[]) =>
      claims.map((c) => {
        offered.push(c.providerAuth);
        const v = at(c.id, ['creating']);
        return (
          v && {
            volume: { ...v, providerAuth: v.providerAuth ?? c.providerAuth },
            targetNum: targetNums.get(c.id) ?? null,
          }
        );
      }),
    markCreated: async (created: { id: string; providerLocation: string }[]) => {
      const error = fail.markCreated?.shift();
      if (error) throw error;
      return created.map((c) => {
        if (!at(c.id, ['creating'])) return false;
        rows.set(c.id, {
          ...(rows.get(c.id) as VolumeRecord),
          status: 'available',
          providerLocation: c.providerLocation,
        });
        done.push(`available at ${c.providerLocation}`);
        return true;
      });
    },
    claimForDelete: async (_host: string, ids: string[]) =>
      ids.map((id) => {
        const v = at(id, ['deleting']);
        return v && { volume: v, targetNum: targetNums.get(id) ?? null };
      }),
    markDeleted: async (ids: string[]) =>
      ids.map((id) => {
        rows.delete(id);
        done.push('deleted');
        return true;
      }),
    transition: async (id: string, move: Move<VolumeStatus>, changes: VolumeChanges = {}) => {
      const v = rows.get(id);
      if (!v || !move.from.includes(v.status)) return undefined;
      const to = move.to;
      const next = { ...v, ...changes, status: to } as VolumeRecord;
      rows.set(id, next);
      done.push(
        changes.statusReason
          ? `${to}: ${changes.statusReason}`
          : `${to}${changes.size ? ` size ${changes.size}` : ''}`,
      );
      return next;
    },
  };
  const snapshots = {
    find: async (id: string) => snapshotRows.get(id),
    get: async (id: string) => {
      const found = snapshotRows.get(id);
      if (!found) throw new NotFoundError(`Snapshot ${id} could not be found.`);
      return found;
    },
    ofVolume: async (volumeId: string) => [...snapshotRows.values()].filter((x) => x.volumeId === volumeId),
    onHost: async (_host: string, statuses: readonly string[]) =>
      [...snapshotRows.values()].filter((x) => statuses.includes(x.status)),
    transition: async (id: string, move: Move<SnapshotStatus>, changes: { statusReason?: string } = {}) => {
      const found = snapshotRows.get(id);
      if (!found || !move.from.includes(found.status)) return undefined;
      if (move.to === 'deleted') snapshotRows.delete(id);
      else snapshotRows.set(id, { ...found, ...changes, status: move.to } as SnapshotRecord);
      done.push(`snapshot ${move.to}${changes.statusReason ? `: ${changes.statusReason}` : ''}`);
      return snapshotRows.get(id);
    },
  };
  const attachments = {
    liveAddresses: async () => [...new Set(live.values())].sort(),
    connect: async (_id: string, c: { ip: string; initiator: string }) => {
      const previous = [...new Set(live.values())].sort();
      live.set(c.initiator, c.ip);
      return { previous, current: [...new Set(live.values())].sort() };
    },
    disconnect: async (_id: string, initiator: string) => {
      live.delete(initiator);
      return [...new Set(live.values())].sort();
    },
    live: async () =>
      [...live.entries()].map(([initiator, ip]) => ({
        initiator,
        ip,
        attachStatus: 'connected',
        instanceUuid: null,
      })),
    markAttached: async (id: string, a: { initiator: string; instanceUuid: string; host: string | null }) => {
      done.push(`attach ${id} via ${a.initiator} to ${a.instanceUuid} on ${a.host}`);
      return attachResult;
    },
    markDetached: async (id: string) => {
      done.push(`detach ${id}`);
      return detachResult;
    },
  };
  const kept = new Map<string, ChapCredentials>(); // config name → the CHAP account it names
  const target = {
    storedCredentials: async (spec: { name: string; iqn: string }) =>
      spec.iqn === `iqn.2010-10.org.openstack:${spec.name}` ? kept.get(spec.name) : undefined,
    liveExports: async () => served,
    createExport: async (spec: ExportSpec) => {
      if (fail.export) throw fail.export;
      exported.push(spec);
      served.set(spec.iqn, spec.tid);
      done.push(`export ${spec.tid} for [${spec.initiators.join(' ')}]`);
    },
    removeExport: async (spec: ExportRef & { chapUser?: string }) => {
      done.push(`unexport ${spec.tid} ${spec.iqn} ${spec.chapUser ?? '(account found by the target)'}`);
    },
    extendExport: async (spec: ExportRef) => {
      done.push(`lun refreshed on ${spec.tid} from ${spec.backingPath}`);
    },
    providerLocation: (spec: ExportSpec) => `portal,${spec.tid} ${spec.iqn} 1`,
    initializeConnection: async (spec: ExportSpec, previous: readonly string[]) => {
      done.push(`acl [${previous.join(' ')}] → [${spec.initiators.join(' ')}] on ${spec.tid}`);
      return { driver_volume_type: 'iscsi', data: { target_iqn: spec.iqn } } as unknown as ConnectionInfo;
    },
    terminateConnection: async (spec: ExportSpec, previous: readonly string[]) => {
      done.push(`acl [${previous.join(' ')}] → [${spec.initiators.join(' ')}] on ${spec.tid}`);
    },
  };
  const driver = {
    thin: true,
    createVolume: async (name: string, size: number) => {
      await storageGate;
      if (fail.storage) throw fail.storage;
      done.push(`storage ${name} ${size}G`);
    },
    deleteVolume: async (name: string) => {
      if (fail.storage) throw fail.storage;
      done.push(`storage ${name} removed`);
    },
    extendVolume: async (name: string, size: number) => {
      done.push(`storage ${name} ${size}G`);
    },
    createSnapshot: async (name: string, volumeName: string, size: number) => {
      if (fail.storage) throw fail.storage;
      done.push(`storage ${name} of ${volumeName} ${size}G`);
    },
    deleteSnapshot: async (name: string) => {
      done.push(`storage ${name} removed`);
    },
    createVolumeFrom: async (
      name: string,
      size: number,
      source: { kind: string; name: string; sizeGb: number },
    ) => {
      done.push(`storage ${name} ${size}G from ${source.kind} ${source.name} ${source.sizeGb}G`);
    },
    backingPath: (name: string) => `/v/${name}`,
    capacity: async () => ({ totalGb: 100, freeGb: 60, provisionedGb: 70 }),
  };
  const reports: unknown[] = [];
  const logged: string[] = [];
  const secrets = new SecretBox([`k1:${randomBytes(32).toString('base64')}`]);
  const deps = {
    volumes,
    snapshots,
    targets: { allocate: async (_host: string, id: string) => targetNums.get(id) ?? 9 },
    attachments,
    driver,
    target,
    scheduler: {
      update_service_capabilities: async (_ctx: unknown, report: { host: string; capabilities: object }) =>
        reports.push({ host: report.host, ...report.capabilities }),
    },
    secrets,
    log: pino({ level: 'info' }, { write: (l: string) => logged.push(l) }),
  } as unknown as VolumeManagerDeps;
  const manager = new VolumeManager(deps, {
    host: 'host-a',
    availabilityZone: 'nova',
    volumeBackendName: 'file',
    iqnPrefix: 'iqn.2010-10.org.openstack:',
    maxTargets: 100,
    reservedPercentage: 5,
    maxOverSubscriptionRatio: 20,
    resumeStalledAfterSec: 300,
  });
  return {
    manager,
    done,
    offered,
    exported,
    rows,
    live,
    served,
    targetNums,
    fail,
    reports,
    reads,
    kept,
    secrets,
    /** The manager's own log lines, parsed. */
    logs: () => logged.map((l) => JSON.parse(l) as Record<string, unknown>),
    logText: () => logged.join(''),
    status: (id = 'v1') => rows.get(id)?.status,
    snapshotStatus: (id = 's1') => snapshotRows.get(id)?.status,
    holdStorage(until: Promise<void>) {
      storageGate = until;
    },
    answers(attach: boolean, detach: 'available' | 'in-use' | undefined) {
      attachResult = attach;
      detachResult = detach;
    },
  };
}

describe('VolumeManager.createVolume', () => {
  test('creates the storage, exports it under the claimed target number and records where the target says', async () => {
    const f = fixture();
    await f.manager.createVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([
      'storage volume-00000001 1G',
      'export 7 for []',
      `available at portal,7 ${IQN} 1`,
    ]);
  });

  test('a volume not being created here is left alone', async () => {
    const f = fixture([volumeRow({ host: 'host-b' }), volumeRow({ id: 'v2', status: 'available' })]);
    f.targetNums.set('v2', 8);
    await f.manager.createVolume(adminContext(), 'v1', log);
    await f.manager.createVolume(adminContext(), 'v2', log);
    await f.manager.createVolume(adminContext(), 'missing', log);
    expect(f.done).toEqual([]);
  });

  test('no free target number fails the create before any storage is made', async () => {
    const f = fixture();
    f.targetNums.set('v1', null);
    await f.manager.createVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual(['error: create failed: no free iSCSI target number on host-a (all 100 in use)']);
  });

  test("a storage or export failure is the volume's: it goes to error with the reason", async () => {
    const f = fixture();
    f.fail.export = new BasaltError('tgtd could not create target 7: target exists');
    await f.manager.createVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([
      'storage volume-00000001 1G',
      'error: create failed: tgtd could not create target 7: target exists',
    ]);
  });

  test("the database's passing trouble is not: it is thrown for the retry and the volume stays creating", async () => {
    const f = fixture();
    f.fail.markCreated = [new Error('Connection terminated unexpectedly')];
    await expect(f.manager.createVolume(adminContext(), 'v1', log)).rejects.toThrow('Connection terminated');
    expect(f.status()).toBe('creating');
    expect(f.done).toEqual(['storage volume-00000001 1G', 'export 7 for []']);
    // the retry redoes the idempotent steps and finishes
    await f.manager.createVolume(adminContext(), 'v1', log);
    expect(f.status()).toBe('available');
  });
});

describe('VolumeManager CHAP secrets', () => {
  test('the secret goes to the database sealed for its row, and to the export in clear', async () => {
    const f = fixture([volumeRow({ providerAuth: null })]);
    await f.manager.createVolume(adminContext(), 'v1', log);
    const [stored] = f.offered as [string];
    const [spec] = f.exported as [ExportSpec];
    expect(stored).toMatch(/^enc:v1:k1:/);
    expect(spec.chapPassword).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(stored).not.toContain(spec.chapPassword);
    expect(stored).not.toContain(spec.chapUser);
  });

  test('a secret stored before sealing still exports (until the worker reseals it)', async () => {
    const f = fixture([volumeRow({ status: 'creating', providerAuth: AUTH })]);
    await f.manager.createVolume(adminContext(), 'v1', log);
    expect(f.exported.map((e) => `${e.chapUser} ${e.chapPassword}`)).toEqual([
      'UserName1234 Secret1234567890',
    ]);
  });
});

describe('VolumeManager CHAP secret that does not open', () => {
  const elsewhere = new SecretBox([`k9:${randomBytes(32).toString('base64')}`]);
  const KEPT = { user: 'KeptUser1234', password: 'KeptSecret1234567890' };
  const unopenable = (over: Partial<VolumeRecord>) =>
    volumeRow({ ...over, providerAuth: sealProviderAuth(elsewhere, over.id ?? 'v1', AUTH) });

  test('the connections take the credentials its target config holds: the ACL changes both ways', async () => {
    const f = fixture([unopenable({ status: 'in-use' })]);
    f.kept.set('volume-00000001', KEPT);
    f.live.set('iqn.2026-11.test:other', '10.0.0.1');
    const info = await f.manager.initializeConnection('v1', connector);
    expect(info.data.target_iqn).toBe(IQN);
    await f.manager.terminateConnection('v1', connector);
    expect(f.done).toEqual([
      'acl [10.0.0.1] → [10.0.0.1 10.0.0.2] on 7',
      'acl [10.0.0.1 10.0.0.2] → [10.0.0.1] on 7',
    ]);
    expect(f.logs().filter((l) => l.level === 40)).toEqual([
      expect.objectContaining({
        volume_id: 'v1',
        msg: 'CHAP secret does not open: its target config has it',
      }),
      expect.objectContaining({
        volume_id: 'v1',
        msg: 'CHAP secret does not open: its target config has it',
      }),
    ]);
    expect(f.logText()).not.toMatch(/KeptUser1234|KeptSecret1234567890|UserName1234|Secret1234567890/);
  });

  test('with no config naming an account, the connections are refused before anything changes', async () => {
    const f = fixture([unopenable({ status: 'in-use' })]);
    // a config of another target is no source
    f.kept.set('volume-00000002', KEPT);
    f.live.set('iqn.2026-11.test:other', '10.0.0.1');
    await expect(f.manager.initializeConnection('v1', connector)).rejects.toThrow(
      "volume v1's stored CHAP secret cannot be opened",
    );
    expect([...f.live.keys()]).toEqual(['iqn.2026-11.test:other']);
    await expect(
      f.manager.terminateConnection('v1', { ...connector, initiator: 'iqn.2026-11.test:other' }),
    ).rejects.toThrow("volume v1's stored CHAP secret cannot be opened");
    expect(f.done).toEqual([]);
  });

  test('ensureExports restores its lost export with them; without them it logs and tries again next pass', async () => {
    const f = fixture([unopenable({ status: 'available' })]);
    expect(await f.manager.ensureExports()).toBe(0);
    expect(f.logs().find((l) => l.level === 50)).toMatchObject({
      volume_id: 'v1',
      msg: 'could not restore export',
    });
    f.kept.set('volume-00000001', KEPT);
    expect(await f.manager.ensureExports()).toBe(1);
    expect(f.exported.map((e) => `${e.tid} ${e.chapUser} ${e.chapPassword}`)).toEqual([
      '7 KeptUser1234 KeptSecret1234567890',
    ]);
  });

  test('the reseal at start seals the recovered credentials under the current key, saying so by id only', async () => {
    const f = fixture([
      unopenable({ status: 'available' }),
      unopenable({ id: 'v2', status: 'available', backendName: 'volume-00000002' }),
    ]);
    f.targetNums.set('v2', 8);
    f.kept.set('volume-00000001', KEPT);
    await f.manager.recover();
    const row = f.rows.get('v1') as VolumeRecord;
    expect(row.providerAuth).toMatch(/^enc:v1:k1:/);
    expect(chapCredentials(f.secrets, row)).toEqual(KEPT);
    // the export came back with them; v2, with nothing to recover from, stays as it is
    expect(f.exported.map((e) => `${e.tid} ${e.chapUser}`)).toEqual(['7 KeptUser1234']);
    expect(() => chapCredentials(f.secrets, f.rows.get('v2') as VolumeRecord)).toThrow(SecretBoxError);
    const logs = f.logs();
    expect(logs.find((l) => l.msg === 'CHAP secret recovered from its target config')).toEqual(
      expect.objectContaining({ level: 40, volume_id: 'v1' }),
    );
    expect(logs.find((l) => l.msg === 'CHAP secret cannot be opened')).toEqual(
      expect.objectContaining({ level: 50, volume_id: 'v2' }),
    );
    // the row opens now: nothing more is taken from the config
    expect(logs.filter((l) => l.msg === 'CHAP secret does not open: its target config has it')).toEqual([]);
    expect(f.logText()).not.toMatch(/KeptUser1234|KeptSecret1234567890|UserName1234|Secret1234567890/);
  });
});

describe('VolumeManager.deleteVolume', () => {
  test('removes the export with its target number and CHAP user, then the storage, then the row', async () => {
    const f = fixture([volumeRow({ status: 'deleting' })]);
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([`unexport 7 ${IQN} UserName1234`, 'storage volume-00000001 removed', 'deleted']);
  });

  test('a volume whose secret no key opens is deleted all the same: the target finds the account, the reason is logged without the secret', async () => {
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const elsewhere = new SecretBox([`k9:${randomBytes(32).toString('base64')}`]);
    const f = fixture([
      volumeRow({ status: 'deleting', providerAuth: sealProviderAuth(elsewhere, 'v1', AUTH) }),
    ]);
    await f.manager.deleteVolume(adminContext(), 'v1', capture);
    expect(f.done).toEqual([
      `unexport 7 ${IQN} (account found by the target)`,
      'storage volume-00000001 removed',
      'deleted',
    ]);
    const warned = lines.map((l) => JSON.parse(l)).find((l) => l.level === 40);
    expect(warned).toMatchObject({
      volume_id: 'v1',
      msg: 'CHAP secret cannot be opened: the export is removed without it',
    });
    expect(lines.join('')).not.toMatch(/UserName1234|Secret1234567890/);
  });

  test('a volume with no CHAP credentials stored still has its export removed', async () => {
    const f = fixture([volumeRow({ status: 'deleting', providerAuth: null })]);
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([
      `unexport 7 ${IQN} (account found by the target)`,
      'storage volume-00000001 removed',
      'deleted',
    ]);
  });

  test('a volume that never got a target number has no export to remove', async () => {
    const f = fixture([volumeRow({ status: 'deleting' })]);
    f.targetNums.delete('v1');
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual(['storage volume-00000001 removed', 'deleted']);
  });

  test('a volume not being deleted here is left alone', async () => {
    const f = fixture([volumeRow({ status: 'available' })]);
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([]);
  });

  test('a storage failure leaves the volume error_deleting with the reason', async () => {
    const f = fixture([volumeRow({ status: 'deleting' })]);
    f.fail.storage = new BasaltError('lvremove failed');
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([
      `unexport 7 ${IQN} UserName1234`,
      'error_deleting: delete failed: lvremove failed',
    ]);
  });
});

describe('VolumeManager.extendVolume', () => {
  test('grows the storage, re-reads the LUN and records the size', async () => {
    const f = fixture([volumeRow({ status: 'extending', extendTo: 3 })]);
    await f.manager.extendVolume(adminContext(), 'v1', 3, log);
    expect(f.done).toEqual([
      'storage volume-00000001 3G',
      'lun refreshed on 7 from /v/volume-00000001',
      'available size 3',
    ]);
  });

  test('a volume whose secret no key opens is extended all the same: growing the LUN needs no credentials', async () => {
    const elsewhere = new SecretBox([`k9:${randomBytes(32).toString('base64')}`]);
    const f = fixture([
      volumeRow({ status: 'extending', extendTo: 3, providerAuth: sealProviderAuth(elsewhere, 'v1', AUTH) }),
    ]);
    await f.manager.extendVolume(adminContext(), 'v1', 3, log);
    expect(f.done).toEqual([
      'storage volume-00000001 3G',
      'lun refreshed on 7 from /v/volume-00000001',
      'available size 3',
    ]);
  });

  test('a size that does not grow the volume is its failure, before any storage is touched', async () => {
    const f = fixture([volumeRow({ status: 'extending', size: 2 })]);
    await f.manager.extendVolume(adminContext(), 'v1', 2, log);
    expect(f.done).toEqual(['error_extending: extend failed: new size 2 must exceed 2']);
  });

  test('a volume not extending on this host is left alone', async () => {
    const f = fixture([
      volumeRow({ status: 'available' }),
      volumeRow({ id: 'v2', status: 'extending', host: 'host-b' }),
    ]);
    await f.manager.extendVolume(adminContext(), 'v1', 3, log);
    await f.manager.extendVolume(adminContext(), 'v2', 3, log);
    expect(f.done).toEqual([]);
  });
});

describe('VolumeManager when tgtd is away', () => {
  test("it is not the volume's failure: the create stays creating, is thrown for the retry, and the sweep finishes it", async () => {
    const f = fixture();
    f.fail.export = new TgtdUnavailableError(
      'cannot reach tgtd at /var/run/tgtd/socket.1: connect ECONNREFUSED',
    );
    await expect(f.manager.createVolume(adminContext(), 'v1', log)).rejects.toThrow('cannot reach tgtd');
    expect(f.status('v1')).toBe('creating');
    expect(f.done.some((d) => d.startsWith('error'))).toBe(false);
    delete f.fail.export;
    expect(await f.manager.resumeStalled()).toBe(1);
    expect(f.status('v1')).toBe('available');
  });
});

describe('VolumeManager.resumeStalled and recover', () => {
  test('finish each unfinished operation; an extend without its target size fails with the reason', async () => {
    const f = fixture([
      volumeRow({ id: 'v1', status: 'creating' }),
      volumeRow({ id: 'v2', status: 'deleting', backendName: 'volume-00000002' }),
      volumeRow({ id: 'v3', status: 'extending', extendTo: 4, backendName: 'volume-00000003' }),
      volumeRow({ id: 'v4', status: 'extending', extendTo: null, backendName: 'volume-00000004' }),
    ]);
    expect(await f.manager.resumeStalled()).toBe(4);
    expect(f.status('v1')).toBe('available');
    expect(f.rows.has('v2')).toBe(false);
    expect(f.rows.get('v3')).toMatchObject({ status: 'available', size: 4 });
    expect(f.rows.get('v4')).toMatchObject({
      status: 'error_extending',
      statusReason: 'extend failed: its new size was not recorded',
    });
    expect(f.done.join('\n')).not.toContain('storage volume-00000004');
  });

  test('the first sweep takes up every unfinished row; later ones only those untouched for resume_stalled_after, all again after an outage', async () => {
    const fresh = () => new Date();
    const f = fixture([volumeRow({ id: 'v1', status: 'creating', updatedAt: fresh() })]);
    expect(await f.manager.resumeStalled()).toBe(1);
    expect(f.status('v1')).toBe('available');
    f.rows.set('v2', volumeRow({ id: 'v2', status: 'deleting', updatedAt: fresh() }));
    expect(await f.manager.resumeStalled()).toBe(0);
    // the database was away for a sweep: the next one looks at every unfinished row
    f.fail.onHost = [new Error('Connection terminated unexpectedly')];
    await expect(f.manager.resumeStalled()).rejects.toThrow('Connection terminated');
    expect(await f.manager.resumeStalled()).toBe(1);
    expect(f.rows.has('v2')).toBe(false);
    // so does the one after the broker's connection dropped
    f.rows.set('v3', volumeRow({ id: 'v3', status: 'deleting', updatedAt: fresh() }));
    f.manager.resumeAllSoon();
    expect(await f.manager.resumeStalled()).toBe(1);
  });

  test('a volume this process is working on is not resumed alongside', async () => {
    const f = fixture();
    const hold = gate();
    f.holdStorage(hold.opened);
    const running = f.manager.createVolume(adminContext(), 'v1', log);
    await new Promise((r) => setImmediate(r));
    expect(await f.manager.resumeStalled()).toBe(0);
    hold.release();
    await running;
    expect(f.done.filter((d) => d.startsWith('storage'))).toHaveLength(1);
  });

  test('recover finishes what was in flight and restores the exports tgtd lost', async () => {
    const f = fixture([
      volumeRow({ id: 'v1', status: 'creating' }),
      volumeRow({ id: 'v2', status: 'in-use', backendName: 'volume-00000002' }),
    ]);
    f.targetNums.set('v2', 8);
    await f.manager.recover();
    expect(f.status('v1')).toBe('available');
    expect(f.served.get('iqn.2010-10.org.openstack:volume-00000002')).toBe(8);
  });
});

describe('VolumeManager.ensureExports', () => {
  test('re-exports only what tgtd does not serve, with its connected initiators', async () => {
    const f = fixture([
      volumeRow({ id: 'v1', status: 'available' }),
      volumeRow({ id: 'v2', status: 'in-use', backendName: 'volume-00000002' }),
      volumeRow({ id: 'v3', status: 'error', backendName: 'volume-00000003' }),
    ]);
    f.served.set(IQN, 7);
    f.targetNums.set('v2', 8);
    f.live.set(connector.initiator, connector.ip);
    expect(await f.manager.ensureExports()).toBe(1);
    expect(f.done).toEqual(['export 8 for [10.0.0.2]']);
    // a served volume costs no read of its row
    expect(f.reads).toEqual(['v2']);
    // all served now: the next pass does nothing, and reads nothing
    expect(await f.manager.ensureExports()).toBe(0);
    expect(f.reads).toEqual(['v2']);
  });

  test('a failure to restore one export is logged and the pass goes on', async () => {
    const f = fixture([
      volumeRow({ id: 'v1', status: 'available', providerAuth: null }),
      volumeRow({ id: 'v2', status: 'available', backendName: 'volume-00000002' }),
    ]);
    expect(await f.manager.ensureExports()).toBe(1);
    expect(f.done).toEqual(['export 9 for []']);
  });
});

describe('VolumeManager connections', () => {
  test("initialize adds the connector's address to the ACL the export had", async () => {
    const f = fixture([volumeRow({ status: 'available' })]);
    f.live.set('iqn.2026-11.test:other', '10.0.0.1');
    const info = await f.manager.initializeConnection('v1', connector);
    expect(info.data.target_iqn).toBe(IQN);
    expect(f.done).toEqual(['acl [10.0.0.1] → [10.0.0.1 10.0.0.2] on 7']);
  });

  test('initialize refuses a volume that is not available, attaching or in-use', async () => {
    const f = fixture([volumeRow({ status: 'deleting' })]);
    await expect(f.manager.initializeConnection('v1', connector)).rejects.toThrow(
      'volume v1 is deleting; it cannot be connected',
    );
    expect(f.live.size).toBe(0);
  });

  test("terminate takes the connector's address out of the ACL", async () => {
    const f = fixture([volumeRow({ status: 'in-use' })]);
    f.live.set(connector.initiator, connector.ip);
    f.live.set('iqn.2026-11.test:other', '10.0.0.1');
    await f.manager.terminateConnection('v1', connector);
    expect(f.done).toEqual(['acl [10.0.0.1 10.0.0.2] → [10.0.0.1] on 7']);
  });
});

describe('VolumeManager attach and detach', () => {
  const attachment = { instanceUuid: 'i-1', mountpoint: '/dev/vdb', connector };

  test('the endpoint refuses an instance id that is no UUID and a mountpoint that is no device name', async () => {
    const f = fixture([volumeRow({ status: 'attaching' })]);
    const attach = f.manager.endpoint(() => Promise.reject(new Error('no reconcile in this test'))).methods
      .attach_volume as unknown as (args: object, invocation: object) => Promise<unknown>;
    const args = {
      volume_id: 'v1',
      instance_uuid: '8f0e9c1a-0d3c-4a57-9d5e-4a1c2b3d4e5f',
      mountpoint: '/dev/vdb',
      connector,
    };
    await expect(attach({ ...args, instance_uuid: 'i-1; reboot' }, { log })).rejects.toThrow('invalid id');
    await expect(attach({ ...args, mountpoint: '/dev/../etc/passwd' }, { log })).rejects.toThrow(
      'invalid mountpoint',
    );
    await expect(attach({ ...args, connector: { ...connector, initiator: 'x y' } }, { log })).rejects.toThrow(
      'invalid initiator name',
    );
    expect(f.done).toEqual([]);
  });

  test('attach marks the connection of the connector that was initialized, on its host unless one is named', async () => {
    const f = fixture([volumeRow({ status: 'attaching' })]);
    await f.manager.attachVolume('v1', attachment, log);
    await f.manager.attachVolume('v1', { ...attachment, hostName: 'compute-2' }, log);
    expect(f.done).toEqual([
      `attach v1 via ${connector.initiator} to i-1 on compute-1`,
      `attach v1 via ${connector.initiator} to i-1 on compute-2`,
    ]);
  });

  test('a refused attach says why: no connection from that initiator, or the wrong state', async () => {
    const f = fixture([volumeRow({ status: 'attaching' })]);
    f.answers(false, undefined);
    await expect(f.manager.attachVolume('v1', attachment, log)).rejects.toThrow(
      `volume v1 has no connection from ${connector.initiator}; initialize it first`,
    );
    f.live.set(connector.initiator, connector.ip);
    f.rows.set('v1', volumeRow({ status: 'available' }));
    await expect(f.manager.attachVolume('v1', attachment, log)).rejects.toThrow(
      'Volume v1 status must be attaching, but current status is: available.',
    );
  });

  test('detach moves the volume back; again once available it succeeds', async () => {
    const f = fixture([volumeRow({ status: 'available' })]);
    await f.manager.detachVolume('v1', log);
    f.answers(true, undefined);
    await f.manager.detachVolume('v1', log);
    expect(f.done).toEqual(['detach v1', 'detach v1']);
  });

  test('detach of a volume neither detaching nor attaching is refused with its state', async () => {
    const f = fixture([volumeRow({ status: 'in-use' })]);
    f.answers(true, undefined);
    await expect(f.manager.detachVolume('v1', log)).rejects.toThrow(
      'Volume v1 status must be detaching or attaching, but current status is: in-use.',
    );
  });
});

test('reportCapabilities sends the driver name and the capacity, oversubscription only for thin backends', async () => {
  const f = fixture();
  const capabilities = await f.manager.reportCapabilities();
  expect(f.reports).toEqual([{ host: 'host-a', ...capabilities }]);
  expect(capabilities).toMatchObject({
    volume_backend_name: 'file',
    storage_protocol: 'iSCSI',
    total_capacity_gb: 100,
    free_capacity_gb: 60,
    provisioned_capacity_gb: 70,
    reserved_percentage: 5,
    thin_provisioning_support: true,
    max_over_subscription_ratio: 20,
  });
});

describe('VolumeManager snapshots', () => {
  test('a snapshot is taken of its volume and becomes available; again, nothing more is done', async () => {
    const f = fixture([volumeRow({ status: 'available' })], [snapshotRow()]);
    await f.manager.createSnapshot('s1', log);
    await f.manager.createSnapshot('s1', log);
    expect(f.done).toEqual(['storage snapshot-s1 of volume-00000001 1G', 'snapshot available']);
  });

  test("a snapshot the driver cannot take goes to error with the driver's reason", async () => {
    const f = fixture([volumeRow({ status: 'available' })], [snapshotRow()]);
    f.fail.storage = new BasaltError("Can't create snapshot without using device-mapper kernel driver.");
    await f.manager.createSnapshot('s1', log);
    expect(f.snapshotStatus()).toBe('error');
    expect(f.done).toEqual([
      "snapshot error: create snapshot failed: Can't create snapshot without using device-mapper kernel driver.",
    ]);
  });

  test("another host's snapshot is left alone", async () => {
    const f = fixture([volumeRow({ status: 'available' })], [snapshotRow({ host: 'host-b' })]);
    await f.manager.createSnapshot('s1', log);
    expect(f.done).toEqual([]);
  });

  test('a deleting snapshot is removed from storage, then deleted', async () => {
    const f = fixture([volumeRow({ status: 'available' })], [snapshotRow({ status: 'deleting' })]);
    await f.manager.deleteSnapshot('s1', log);
    expect(f.done).toEqual(['storage snapshot-s1 removed', 'snapshot deleted']);
    expect(f.snapshotStatus()).toBeUndefined();
  });

  test("a cascade delete removes the volume's snapshots before the volume", async () => {
    const f = fixture([volumeRow({ status: 'deleting' })], [snapshotRow({ status: 'deleting' })]);
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.done).toEqual([
      'storage snapshot-s1 removed',
      'snapshot deleted',
      `unexport 7 ${IQN} UserName1234`,
      'storage volume-00000001 removed',
      'deleted',
    ]);
  });

  test('a volume whose snapshot is not being deleted is not deleted: error_deleting', async () => {
    const f = fixture([volumeRow({ status: 'deleting' })], [snapshotRow({ status: 'available' })]);
    await f.manager.deleteVolume(adminContext(), 'v1', log);
    expect(f.status()).toBe('error_deleting');
    expect(f.done).toEqual([
      expect.stringMatching(/^error_deleting: delete failed: volume v1 still has snapshot s1/),
    ]);
  });

  test('a volume from a snapshot or a volume gets its data from the source its row names', async () => {
    const f = fixture(
      [
        volumeRow({ status: 'available', id: 'v0', backendName: 'volume-00000000', size: 1 }),
        volumeRow({ size: 3, snapshotId: 's1' }),
        volumeRow({ id: 'v2', backendName: 'volume-00000002', size: 2, sourceVolid: 'v0' }),
      ],
      [snapshotRow({ status: 'available', volumeId: 'v0' })],
    );
    f.targetNums.set('v2', 8);
    await f.manager.createVolume(adminContext(), 'v1', log);
    await f.manager.createVolume(adminContext(), 'v2', log);
    expect(f.done.filter((d) => d.startsWith('storage'))).toEqual([
      'storage volume-00000001 3G from snapshot snapshot-s1 1G',
      'storage volume-00000002 2G from volume volume-00000000 1G',
    ]);
    expect(f.status('v1')).toBe('available');
    expect(f.status('v2')).toBe('available');
  });

  test('a restarted worker finishes the snapshots it had in flight', async () => {
    const f = fixture(
      [volumeRow({ status: 'available' })],
      [snapshotRow(), snapshotRow({ id: 's2', backendName: 'snapshot-s2', status: 'deleting' })],
    );
    await f.manager.recover();
    expect(f.snapshotStatus('s1')).toBe('available');
    expect(f.snapshotStatus('s2')).toBeUndefined();
  });
});
