import { adminContext, type RequestContext } from '@basalt/context';
import {
  type Move,
  type QuotaLimits,
  SNAPSHOT_STATES,
  type SnapshotRecord,
  VOLUME_STATES,
  type VolumeChanges,
  type VolumeRecord,
  type VolumeStatus,
} from '@basalt/db';
import { BasaltError, NotFoundError } from '@basalt/errors';
import { RpcConnectionError, RpcTimeoutError } from '@basalt/rpc';
import pino from 'pino';
import { VolumeApi } from './volume-api';

const member = adminContext({ isAdmin: false, projectId: 'p1', userId: 'u1' });
const admin = adminContext({ isAdmin: true, projectId: 'p1', userId: 'admin' });
const quota = { volumes: 10, gigabytes: 100 };

const row = (over: Partial<VolumeRecord> = {}): VolumeRecord =>
  ({ id: 'v1', projectId: 'p1', size: 1, status: 'available', host: 'host-a', ...over }) as VolumeRecord;

/** The API over in-memory volumes that change state as the SQL does, with a record of every step. */
function fixture(initial: VolumeRecord[] = [row()], snapshotList: SnapshotRecord[] = []) {
  const rows = new Map(initial.map((v) => [v.id, v]));
  const snapshotRows = new Map(snapshotList.map((x) => [x.id, x]));
  const done: string[] = [];
  const unreachable: { scheduler?: Error; volume?: Error } = {};
  const move = (id: string, m: Move<VolumeStatus>, changes: VolumeChanges = {}) => {
    const v = rows.get(id);
    if (!v || !m.from.includes(v.status)) return undefined;
    const next = { ...v, ...changes, status: m.to } as VolumeRecord;
    rows.set(id, next);
    done.push(`${m.to}${changes.statusReason ? `: ${changes.statusReason}` : ''}`);
    return next;
  };
  const volumes = {
    find: async (id: string) => rows.get(id),
    createWithinQuota: async (
      input: {
        size: number;
        availabilityZone: string;
        volumeType: string;
        snapshotId?: string;
        sourceVolid?: string;
      },
      template: string,
    ) => {
      const v = row({
        id: 'new',
        status: 'creating',
        host: null,
        size: input.size,
        availabilityZone: input.availabilityZone,
      });
      rows.set(v.id, v);
      done.push(
        `inserted ${input.size}G in ${input.availabilityZone} as ${template}` +
          (input.volumeType === 'default-id' ? '' : ` of type ${input.volumeType}`) +
          (input.snapshotId ? ` from snapshot ${input.snapshotId}` : '') +
          (input.sourceVolid ? ` from volume ${input.sourceVolid}` : ''),
      );
      return v;
    },
    transition: async (id: string, m: Move<VolumeStatus>, changes?: VolumeChanges) => move(id, m, changes),
    // as the SQL: the swap holds only while the row has no host
    deleteUnplaced: async (id: string, m: Move<VolumeStatus>) => {
      if (rows.get(id)?.host) return false;
      if (move(id, m)) return true;
      throw new BasaltError(`Invalid volume: status is ${rows.get(id)?.status}`);
    },
    transitionOrThrow: async (id: string, m: Move<VolumeStatus>, changes?: VolumeChanges) => {
      const moved = move(id, m, changes);
      if (!moved) throw new BasaltError(`Invalid volume: status is ${rows.get(id)?.status}`);
      return moved;
    },
    get: async (id: string) => rows.get(id) as VolumeRecord,
    beginDelete: async (id: string, m: Move<VolumeStatus>, cascade?: Move<string>) => {
      const snapshots = [...snapshotRows.values()].filter((x) => x.volumeId === id);
      if (snapshots.length > 0 && !cascade)
        throw new BasaltError(`Invalid volume: ${snapshots.length} dependent snapshots`);
      const moved = move(id, m);
      if (!moved) throw new BasaltError(`Invalid volume: status is ${rows.get(id)?.status}`);
      for (const x of snapshots) done.push(`snapshot ${x.id} ${cascade?.to}`);
      return moved;
    },
    beginExtendWithinQuota: async (v: VolumeRecord, newSize: number) => {
      move(v.id, VOLUME_STATES.moves.beginExtend, { extendTo: newSize });
    },
  };
  /** Live attachments by volume: what os-attach records and os-detach ends, as the SQL does. */
  const attached = new Map<string, Array<{ id: string; initiator: string | null; attachStatus: string }>>();
  const attachments = {
    live: async (id: string) => attached.get(id) ?? [],
    record: async (id: string, a: { instanceUuid: string | null }) => {
      const v = rows.get(id);
      if (!v || !VOLUME_STATES.moves.recordAttach.from.includes(v.status)) return undefined;
      rows.set(id, { ...v, status: 'in-use' });
      const recorded = { id: `a-${id}`, initiator: null, attachStatus: 'attached' };
      attached.set(id, [recorded]);
      done.push(`recorded ${a.instanceUuid} on ${id}`);
      return recorded;
    },
    endRecorded: async (id: string, attachmentId: string, force: boolean) => {
      const v = rows.get(id);
      const move = force ? VOLUME_STATES.moves.forceDetach : VOLUME_STATES.moves.recordDetach;
      if (!v || !move.from.includes(v.status)) return undefined;
      rows.set(id, { ...v, status: 'available' });
      attached.set(id, []);
      done.push(`ended ${attachmentId}${force ? ' (forced)' : ''}`);
      return 'available';
    },
  };
  const deps = {
    attachments,
    services: {
      list: async () => [
        { binary: 'basalt-volume', availabilityZone: 'zone-b' },
        { binary: 'basalt-scheduler', availabilityZone: 'internal' },
      ],
    },
    volumes,
    snapshots: { find: async (id: string) => snapshotRows.get(id) },
    types: {
      // the default type, and a private one only its project (or an admin) may use
      get: async (idOrName: string, project: string | undefined) => {
        if (idOrName === '__DEFAULT__') return { id: 'default-id', name: '__DEFAULT__', extraSpecs: {} };
        if ((idOrName === 'gold' || idOrName === 'gold-id') && (project === undefined || project === 'p1')) {
          return { id: 'gold-id', name: 'gold', extraSpecs: { volume_backend_name: 'lvm' } };
        }
        throw new NotFoundError(`Volume type ${idOrName} could not be found.`);
      },
    },
    scheduler: {
      create_volume: async (
        _ctx: RequestContext,
        spec: {
          volume_id: string;
          size: number;
          availability_zone: string;
          extra_specs: Record<string, string>;
          resource_backend?: string;
        },
      ) => {
        if (unreachable.scheduler) throw unreachable.scheduler;
        const specs = Object.entries(spec.extra_specs).map(([k, v]) => ` ${k}=${v}`);
        done.push(
          `scheduler.create_volume ${spec.volume_id} ${spec.size}G ${spec.availability_zone}${specs.join('')}` +
            (spec.resource_backend ? ` on ${spec.resource_backend}` : ''),
        );
      },
    },
    volumeRpc: {
      delete_volume: async (_ctx: RequestContext, host: string, args: { volume_id: string }) => {
        if (unreachable.volume) throw unreachable.volume;
        done.push(`volume.${host}.delete_volume ${args.volume_id}`);
      },
      extend_volume: async (
        _ctx: RequestContext,
        host: string,
        args: { volume_id: string; new_size: number },
      ) => {
        if (unreachable.volume) throw unreachable.volume;
        done.push(`volume.${host}.extend_volume ${args.volume_id} ${args.new_size}`);
      },
    },
    log: pino({ level: 'silent' }),
  } as unknown as ConstructorParameters<typeof VolumeApi>[0];
  const api = new VolumeApi(deps, {
    nameTemplate: 'volume-%08x',
    defaultZone: 'nova',
    quotaDefaults: quota as unknown as QuotaLimits,
    defaultVolumeType: '__DEFAULT__',
  });
  return { api, done, rows, unreachable, volumes, attached };
}

const request = (
  over: Partial<{ size: number; availabilityZone: string | null; volumeType: string | null }> = {},
) => ({
  size: 2,
  name: 'data',
  description: null,
  availabilityZone: null,
  metadata: {},
  volumeType: null,
  ...over,
});

describe('VolumeApi.create', () => {
  test('inserts the volume in the default zone, then casts to the scheduler with its size and zone', async () => {
    const f = fixture([]);
    const volume = await f.api.create(member, request());
    expect(volume.id).toBe('new');
    expect(f.done).toEqual(['inserted 2G in nova as volume-%08x', 'scheduler.create_volume new 2G nova']);
  });

  test("a type asked for by name is the volume's, and its extra specs go to the scheduler", async () => {
    const f = fixture([]);
    await f.api.create(member, request({ volumeType: 'gold' }));
    expect(f.done).toEqual([
      'inserted 2G in nova as volume-%08x of type gold-id',
      'scheduler.create_volume new 2G nova volume_backend_name=lvm',
    ]);
    await expect(f.api.create(member, request({ volumeType: 'silver' }))).rejects.toThrow(
      'Volume type silver could not be found.',
    );
    expect(f.done).toHaveLength(2);
  });

  test('a zone no volume service is in is refused before anything is written', async () => {
    const f = fixture([]);
    await expect(f.api.create(member, request({ availabilityZone: 'internal' }))).rejects.toThrow(
      "Availability zone 'internal' is invalid.",
    );
    await f.api.create(member, request({ availabilityZone: 'zone-b' }));
    expect(f.done).toEqual(['inserted 2G in zone-b as volume-%08x', 'scheduler.create_volume new 2G zone-b']);
  });

  test('a scheduler that cannot be reached leaves the volume in error with the reason, and the caller told', async () => {
    const f = fixture([]);
    f.unreachable.scheduler = new BasaltError('broker gone', { retryable: true });
    await expect(f.api.create(member, request())).rejects.toThrow('broker gone');
    expect(f.rows.get('new')?.status).toBe('error');
    expect(f.done.at(-1)).toBe('error: could not reach the scheduler: broker gone');
  });

  test("a cast the broker did not take is left to the scheduler's sweep: the volume stays creating and the request stands", async () => {
    const f = fixture([]);
    f.unreachable.scheduler = new RpcTimeoutError(
      'cast scheduler.create_volume: broker did not take the message',
    );
    expect((await f.api.create(member, request())).id).toBe('new');
    expect(f.rows.get('new')?.status).toBe('creating');
    expect(f.done).toEqual(['inserted 2G in nova as volume-%08x']);
  });

  test('a token without a project is refused', async () => {
    const f = fixture([]);
    await expect(f.api.create(adminContext({ isAdmin: false }), request())).rejects.toThrow(
      'A project-scoped token is required.',
    );
  });
});

describe('VolumeApi.get', () => {
  test("another project's volume is as missing as one that does not exist", async () => {
    const f = fixture([row({ projectId: 'p2' })]);
    await expect(f.api.get(member, 'v1')).rejects.toThrow('Volume v1 could not be found.');
    await expect(f.api.get(member, 'nope')).rejects.toThrow('Volume nope could not be found.');
  });
});

describe('VolumeApi.delete', () => {
  test('a volume on a host goes deleting and its host is told', async () => {
    const f = fixture();
    await f.api.delete(member, 'v1');
    expect(f.done).toEqual(['deleting', 'volume.host-a.delete_volume v1']);
  });

  test('a volume that never reached a host is deleted at once, nothing cast', async () => {
    const f = fixture([row({ status: 'error', host: null })]);
    await f.api.delete(member, 'v1');
    expect(f.done).toEqual(['deleted']);
  });

  test('a force delete that read no host, of a volume placed since, goes through the host that is creating it', async () => {
    const f = fixture([row({ status: 'creating', host: null })]);
    const read = f.rows.get('v1') as VolumeRecord;
    // the scheduler places the volume between the API's read and its swap
    f.rows.set('v1', { ...read, host: 'host-a' });
    f.volumes.find = async () => read;
    await f.api.delete(admin, 'v1', { force: true });
    expect(f.done).toEqual(['deleting', 'volume.host-a.delete_volume v1']);
  });

  test('a volume in a state that forbids deleting is refused and left as it is', async () => {
    const f = fixture([row({ status: 'in-use' })]);
    await expect(f.api.delete(member, 'v1')).rejects.toThrow('Invalid volume');
    expect(f.rows.get('v1')?.status).toBe('in-use');
    expect(f.done).toEqual([]);
  });

  test('a delete that cannot be sent leaves error_deleting with the reason', async () => {
    const f = fixture();
    f.unreachable.volume = new BasaltError('no route');
    await expect(f.api.delete(member, 'v1')).rejects.toThrow('no route');
    expect(f.done).toEqual(['deleting', 'error_deleting: the delete could not be sent to host-a: no route']);
  });
});

describe('VolumeApi during a broker outage', () => {
  test("a delete or an extend whose cast found the broker down stays in transit for the host's sweep", async () => {
    const f = fixture([row(), row({ id: 'v2' })]);
    f.unreachable.volume = new RpcConnectionError('broker connection closed');
    await f.api.delete(member, 'v1');
    await f.api.extend(member, 'v2', 4);
    expect(f.rows.get('v1')?.status).toBe('deleting');
    expect(f.rows.get('v2')).toMatchObject({ status: 'extending', extendTo: 4 });
    expect(f.done).toEqual(['deleting', 'extending']);
  });
});

describe('VolumeApi: volumes from a snapshot or a volume', () => {
  const snapshot = (over: Partial<SnapshotRecord> = {}) =>
    ({
      id: 's1',
      volumeId: 'v1',
      projectId: 'p1',
      volumeSize: 2,
      status: 'available',
      host: 'host-a',
      ...over,
    }) as SnapshotRecord;
  const origin = row({ size: 2, volumeType: 'gold-id', availabilityZone: 'zone-b' });

  test("from a snapshot: the source's size, type and zone by default, and its host for the scheduler", async () => {
    const f = fixture([origin], [snapshot()]);
    await f.api.create(member, { ...request(), size: null, snapshotId: 's1' });
    expect(f.done).toEqual([
      'inserted 2G in zone-b as volume-%08x of type gold-id from snapshot s1',
      'scheduler.create_volume new 2G zone-b volume_backend_name=lvm on host-a',
    ]);
  });

  test('a clone may be larger than its source, never smaller', async () => {
    const f = fixture([origin]);
    await expect(f.api.create(member, { ...request({ size: 1 }), sourceVolid: 'v1' })).rejects.toThrow(
      "Volume size '1'GB cannot be smaller than original volume size 2GB. They must be >= original volume size.",
    );
    await expect(f.api.create(member, { ...request({ size: 1 }), snapshotId: 's1' })).rejects.toThrow(
      'Snapshot s1 could not be found.',
    );
    expect(f.done).toEqual([]);
    await f.api.create(member, { ...request({ size: 5 }), sourceVolid: 'v1' });
    expect(f.done[0]).toBe('inserted 5G in zone-b as volume-%08x of type gold-id from volume v1');
  });

  test("a snapshot smaller than asked, not available, or another project's is refused", async () => {
    const f = fixture(
      [origin],
      [snapshot(), snapshot({ id: 's2', status: 'creating' }), snapshot({ id: 's3', projectId: 'p2' })],
    );
    await expect(f.api.create(member, { ...request({ size: 1 }), snapshotId: 's1' })).rejects.toThrow(
      "Volume size '1'GB cannot be smaller than the snapshot size 2GB.",
    );
    await expect(f.api.create(member, { ...request(), snapshotId: 's2' })).rejects.toThrow(
      /Originating snapshot status must be/,
    );
    await expect(f.api.create(member, { ...request(), snapshotId: 's3' })).rejects.toThrow(
      'Snapshot s3 could not be found.',
    );
    expect(f.done).toEqual([]);
  });

  test('a volume with snapshots is deleted only with cascade, its snapshots with it', async () => {
    const f = fixture([origin], [snapshot()]);
    await expect(f.api.delete(member, 'v1')).rejects.toThrow('dependent snapshots');
    await f.api.delete(member, 'v1', { cascade: true });
    expect(f.done).toEqual([
      'deleting',
      `snapshot s1 ${SNAPSHOT_STATES.moves.beginCascadeDelete.to}`,
      'volume.host-a.delete_volume v1',
    ]);
  });
});

describe('VolumeApi.extend', () => {
  test('a size that does not grow the volume is refused before anything is written', async () => {
    const f = fixture([row({ size: 3 })]);
    await expect(f.api.extend(member, 'v1', 3)).rejects.toThrow(
      'New size for extend must be greater than current size. (current: 3, extended: 3).',
    );
    expect(f.done).toEqual([]);
  });

  test('growth starts the extend with its target size and tells the host', async () => {
    const f = fixture();
    await f.api.extend(member, 'v1', 4);
    expect(f.rows.get('v1')).toMatchObject({ status: 'extending', extendTo: 4 });
    expect(f.done).toEqual(['extending', 'volume.host-a.extend_volume v1 4']);
  });

  test('an extend that cannot be sent puts the volume back as it was', async () => {
    const f = fixture();
    f.unreachable.volume = new BasaltError('no route');
    await expect(f.api.extend(member, 'v1', 4)).rejects.toThrow('no route');
    expect(f.rows.get('v1')).toMatchObject({ status: 'available', extendTo: null });
  });
});

describe('VolumeApi.resetStatus', () => {
  test("who may is the policy's (the route's rule, admin_api by default); the volume must be the caller's", async () => {
    const f = fixture();
    await expect(
      f.api.resetStatus(adminContext({ isAdmin: false, projectId: 'p2', userId: 'u2' }), 'v1', 'error'),
    ).rejects.toThrow('Volume v1 could not be found.');
    expect(f.done).toEqual([]);
    // an operator whose policy lets members reset their own volumes is obeyed
    await f.api.resetStatus(member, 'v1', 'error');
    expect(f.rows.get('v1')?.status).toBe('error');
  });

  test('an unknown status or attach status is refused with the choices', async () => {
    const f = fixture();
    await expect(f.api.resetStatus(admin, 'v1', 'broken')).rejects.toThrow(
      /Invalid status 'broken'; must be one of creating, available/,
    );
    await expect(f.api.resetStatus(admin, 'v1', 'error', 'half')).rejects.toThrow(
      "Invalid attach_status 'half'; must be attached or detached.",
    );
    expect(f.done).toEqual([]);
  });

  test('sets the status from any state and clears the reason', async () => {
    const f = fixture([row({ status: 'error_deleting', statusReason: 'old' })]);
    await f.api.resetStatus(admin, 'v1', 'available', 'detached');
    expect(f.rows.get('v1')).toMatchObject({
      status: 'available',
      statusReason: null,
      attachStatus: 'detached',
    });
  });
});

describe('VolumeApi os-attach and os-detach', () => {
  const instance = '11111111-1111-4111-8111-111111111111';
  const attach = { instanceUuid: instance, hostName: null, mountpoint: '/dev/vdb', mode: 'rw' } as const;

  test('os-attach records the attachment; os-detach ends it', async () => {
    const f = fixture();
    await f.api.attach(member, 'v1', attach);
    expect(f.rows.get('v1')?.status).toBe('in-use');
    await f.api.detach(member, 'v1', undefined, false);
    expect(f.done).toEqual([`recorded ${instance} on v1`, 'ended a-v1']);
    expect(f.rows.get('v1')?.status).toBe('available');
    // again: nothing attached, nothing to do
    await f.api.detach(member, 'v1', undefined, false);
    expect(f.done).toHaveLength(2);
  });

  test('a read-only volume is attached read-only or not at all', async () => {
    const f = fixture([row({ readOnly: true })]);
    await expect(f.api.attach(member, 'v1', attach)).rejects.toThrow(
      "Invalid attaching mode 'rw' for volume v1.",
    );
    expect(f.done).toEqual([]);
    await f.api.attach(member, 'v1', { ...attach, mode: 'ro' });
    expect(f.rows.get('v1')?.status).toBe('in-use');
  });

  test('a volume in no state to attach is refused with its status', async () => {
    const f = fixture([row({ status: 'extending' })]);
    await expect(f.api.attach(member, 'v1', attach)).rejects.toThrow(
      'Volume v1 status must be available or attaching to attach, but current status is: extending.',
    );
  });

  test("os-detach leaves a compute host's connection to the compute API, and names what it cannot find", async () => {
    const f = fixture([row({ status: 'in-use' })]);
    f.attached.set('v1', [{ id: 'c1', initiator: 'iqn.2026-11.test:host-a', attachStatus: 'attached' }]);
    await expect(f.api.detach(member, 'v1', undefined, false)).rejects.toThrow(
      /detach it through the compute API/,
    );
    await expect(f.api.detach(member, 'v1', '22222222-2222-4222-8222-222222222222', false)).rejects.toThrow(
      'Volume attachment 22222222-2222-4222-8222-222222222222 could not be found.',
    );
    expect(f.done).toEqual([]);
  });

  test("os-force_detach is an admin's, and takes a volume reset to error", async () => {
    const f = fixture();
    await f.api.attach(member, 'v1', attach);
    f.rows.set('v1', { ...(f.rows.get('v1') as VolumeRecord), status: 'error' });
    await expect(f.api.detach(member, 'v1', 'a-v1', true)).rejects.toThrow(
      'Policy does not allow this action to be performed.',
    );
    await expect(f.api.detach(member, 'v1', 'a-v1', false)).rejects.toThrow(
      'Volume v1 status must be in-use to detach, but current status is: error.',
    );
    await f.api.detach(admin, 'v1', 'a-v1', true);
    expect(f.done.at(-1)).toBe('ended a-v1 (forced)');
    expect(f.rows.get('v1')?.status).toBe('available');
  });
});
