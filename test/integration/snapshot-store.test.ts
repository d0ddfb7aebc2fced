import {
  createDataSource,
  type DataSource,
  FORCE_SNAPSHOTTABLE_STATUSES,
  QuotaRepository,
  SNAPSHOT_STATES,
  SNAPSHOTTABLE_STATUSES,
  SnapshotRepository,
  VOLUME_STATES,
  type VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { InvalidStateError, QuotaExceededError } from '@basalt/errors';
import { createTestDatabase, UNLIMITED_QUOTAS } from '../support/db';

const unlimited = UNLIMITED_QUOTAS;

/** Snapshots and their volumes in real PostgreSQL: the quota check, the locks and the cascade. */
describe('snapshots in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let volumes: VolumeRepository;
  let snapshots: SnapshotRepository;

  /** A volume of `project` placed on host-a and in `status`. */
  const volumeOn = async (project: string, size: number, status = 'available'): Promise<VolumeRecord> => {
    const v = await volumes.createWithinQuota(
      {
        size,
        projectId: project,
        userId: 'u',
        availabilityZone: 'nova',
        displayName: null,
        displayDescription: null,
        volumeType: null,
      },
      'volume-%08x',
      unlimited,
    );
    await ds.query('UPDATE volumes SET host = $2, status = $3 WHERE id = $1', [v.id, 'host-a', status]);
    return volumes.get(v.id);
  };
  const snapshotOf = (volume: VolumeRecord, limits = unlimited, force = false) =>
    snapshots.createWithinQuota(
      {
        volumeId: volume.id,
        projectId: volume.projectId,
        userId: 'u',
        displayName: 'snap',
        displayDescription: null,
        metadata: { k: 'v' },
        volumeStatuses: force ? FORCE_SNAPSHOTTABLE_STATUSES : SNAPSHOTTABLE_STATUSES,
      },
      limits,
    );

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 8 });
    await ds.initialize();
    volumes = new VolumeRepository(ds);
    snapshots = new SnapshotRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test("a snapshot takes its volume's size and host, is named snapshot-<id> and counts in the usage", async () => {
    const volume = await volumeOn('usage', 3);
    const snapshot = await snapshotOf(volume);
    expect(snapshot).toMatchObject({
      volumeId: volume.id,
      volumeSize: 3,
      host: 'host-a',
      status: 'creating',
      progress: '0%',
      backendName: `snapshot-${snapshot.id}`,
      metadata: { k: 'v' },
    });
    expect(await new QuotaRepository(ds).usage('usage')).toMatchObject({
      volumes: 1,
      snapshots: 1,
      gigabytes: 6,
    });
  });

  test('an in-use volume takes a snapshot only with force; an error one never', async () => {
    const inUse = await volumeOn('force', 1, 'in-use');
    await expect(snapshotOf(inUse)).rejects.toThrow(
      `Invalid volume: Volume ${inUse.id} status must be available, but current status is: in-use.`,
    );
    await expect(snapshotOf(inUse, unlimited, true)).resolves.toMatchObject({ status: 'creating' });
    const broken = await volumeOn('force', 1, 'error');
    await expect(snapshotOf(broken, unlimited, true)).rejects.toBeInstanceOf(InvalidStateError);
  });

  test("the snapshots quota and the gigabytes quota, which counts snapshots' sizes, refuse in Cinder's words", async () => {
    const volume = await volumeOn('quota', 2);
    await snapshotOf(volume, { ...unlimited, snapshots: 1 });
    await expect(snapshotOf(volume, { ...unlimited, snapshots: 1 })).rejects.toThrow(
      'SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded',
    );
    // 2G volume + 2G snapshot in use: another 2G snapshot does not fit in 5G, nor does a 2G volume
    await expect(snapshotOf(volume, { ...unlimited, gigabytes: 5 })).rejects.toMatchObject({
      message: expect.stringContaining('quota is 5G and 4G has been consumed'),
    });
    await expect(
      volumes.createWithinQuota(
        {
          size: 2,
          projectId: 'quota',
          userId: 'u',
          availabilityZone: 'nova',
          displayName: null,
          displayDescription: null,
          volumeType: null,
        },
        'volume-%08x',
        { ...unlimited, gigabytes: 5 },
      ),
    ).rejects.toBeInstanceOf(QuotaExceededError);
  });

  test('concurrent snapshots never exceed the snapshots quota', async () => {
    const volume = await volumeOn('race', 1);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => snapshotOf(volume, { ...unlimited, snapshots: 4 })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
  });

  test('a volume with snapshots is not deleted; with cascade its snapshots begin deleting with it', async () => {
    const volume = await volumeOn('cascade', 1);
    const snapshot = await snapshotOf(volume);
    await snapshots.transition(snapshot.id, SNAPSHOT_STATES.moves.finishCreate);
    await expect(volumes.beginDelete(volume.id, VOLUME_STATES.moves.beginDelete)).rejects.toThrow(
      `Invalid volume: Volume ${volume.id} still has 1 dependent snapshots.`,
    );
    expect((await volumes.get(volume.id)).status).toBe('available');
    await volumes.beginDelete(
      volume.id,
      VOLUME_STATES.moves.beginDelete,
      SNAPSHOT_STATES.moves.beginCascadeDelete,
    );
    expect((await volumes.get(volume.id)).status).toBe('deleting');
    expect((await snapshots.get(snapshot.id)).status).toBe('deleting');
  });

  test('a cascade over a snapshot still creating is refused as a whole', async () => {
    const volume = await volumeOn('cascade-creating', 1);
    await snapshotOf(volume);
    await expect(
      volumes.beginDelete(
        volume.id,
        VOLUME_STATES.moves.beginDelete,
        SNAPSHOT_STATES.moves.beginCascadeDelete,
      ),
    ).rejects.toThrow(/a cascade delete takes snapshots/);
    expect((await volumes.get(volume.id)).status).toBe('available');
  });

  test('a snapshot racing a delete of its volume: either the delete is refused or the snapshot is', async () => {
    for (let round = 0; round < 5; round++) {
      const volume = await volumeOn(`race-delete-${round}`, 1);
      const [snap, del] = await Promise.allSettled([
        snapshotOf(volume),
        volumes.beginDelete(volume.id, VOLUME_STATES.moves.beginDelete),
      ]);
      expect([snap.status, del.status].sort()).toEqual(['fulfilled', 'rejected']);
    }
  });

  test('list: filters, sort and keyset pagination within the project', async () => {
    const volume = await volumeOn('listing', 1);
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await snapshotOf(volume));
    await snapshots.update(made[1]?.id as string, { displayName: 'second', metadata: { tier: 'gold' } });
    const page = { limit: 2, sort: [{ key: 'created_at' as const, dir: 'asc' as const }] };
    const first = await snapshots.list({ projectId: 'listing' }, page);
    expect(first.map((s) => s.id)).toEqual(made.slice(0, 2).map((s) => s.id));
    const rest = await snapshots.list({ projectId: 'listing' }, { ...page, marker: first[1]?.id as string });
    expect(rest.map((s) => s.id)).toEqual([made[2]?.id]);
    expect((await snapshots.list({ projectId: 'listing', name: 'second' }, page)).map((s) => s.id)).toEqual([
      made[1]?.id,
    ]);
    expect(
      (await snapshots.list({ projectId: 'listing', metadata: { tier: 'gold' } }, page)).map((s) => s.id),
    ).toEqual([made[1]?.id]);
    expect(await snapshots.list({ projectId: 'other' }, page)).toEqual([]);
    await expect(
      snapshots.list({ projectId: 'other' }, { ...page, marker: made[0]?.id as string }),
    ).rejects.toThrow(/Snapshot [0-9a-f-]+ could not be found/);
  });
});
