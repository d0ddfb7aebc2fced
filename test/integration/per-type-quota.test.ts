import { randomUUID } from 'node:crypto';
import {
  createDataSource,
  type DataSource,
  QuotaRepository,
  SNAPSHOTTABLE_STATUSES,
  SnapshotRepository,
  VOLUME_STATES,
  type VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { QuotaExceededError } from '@basalt/errors';
import { createTestDatabase, UNLIMITED_QUOTAS } from '../support/db';

const unlimited = UNLIMITED_QUOTAS;

/** Cinder's per-volume-type quotas, decided in PostgreSQL by check_volume_quota. */
describe('per-type quotas in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let volumes: VolumeRepository;
  let snapshots: SnapshotRepository;
  let quotas: QuotaRepository;

  const newType = async (name: string): Promise<string> => {
    const id = randomUUID();
    await ds.query('INSERT INTO volume_types (id, name, is_public) VALUES ($1, $2, true)', [id, name]);
    return id;
  };
  const create = (project: string, type: string | null, size = 1) =>
    volumes.createWithinQuota(
      {
        size,
        projectId: project,
        userId: 'u',
        availabilityZone: 'nova',
        displayName: null,
        displayDescription: null,
        volumeType: type,
      },
      'volume-%08x',
      unlimited,
    );
  const placed = async (volume: VolumeRecord): Promise<VolumeRecord> => {
    await ds.query("UPDATE volumes SET host = 'host-a', status = 'available' WHERE id = $1", [volume.id]);
    return volumes.get(volume.id);
  };
  const snapshotOf = (volume: VolumeRecord) =>
    snapshots.createWithinQuota(
      {
        volumeId: volume.id,
        projectId: volume.projectId,
        userId: 'u',
        displayName: 'snap',
        displayDescription: null,
        metadata: {},
        volumeStatuses: SNAPSHOTTABLE_STATUSES,
      },
      unlimited,
    );

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 12 });
    await ds.initialize();
    volumes = new VolumeRepository(ds);
    snapshots = new SnapshotRepository(ds);
    quotas = new QuotaRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test("a type's volumes limit refuses its volumes in Cinder's words, and no other type's", async () => {
    const gold = await newType('gold-volumes');
    const silver = await newType('silver-volumes');
    await quotas.set('p-volumes', { 'volumes_gold-volumes': 1 });
    await create('p-volumes', gold);
    await expect(create('p-volumes', gold)).rejects.toMatchObject({
      message:
        "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold-volumes'.",
      data: { resource: 'volumes_gold-volumes', limit: 1, in_use: 1 },
    });
    await create('p-volumes', silver);
    await create('p-volumes', null);
  });

  test("a type's gigabytes count its volumes and their snapshots; extends and snapshots are checked", async () => {
    const gold = await newType('gold-gb');
    await quotas.set('p-gb', { 'gigabytes_gold-gb': 5 });
    const volume = await placed(await create('p-gb', gold, 2));
    await snapshotOf(volume);
    // 2G volume + 2G snapshot: 2G more does not fit in 5G, whether as a volume, an extend or a snapshot
    await expect(create('p-gb', gold, 2)).rejects.toMatchObject({
      message:
        'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes_gold-gb quota. Requested 2G, quota is 5G and 4G has been consumed.',
    });
    await expect(volumes.beginExtendWithinQuota(volume, 4, unlimited)).rejects.toMatchObject({
      data: { resource: 'gigabytes_gold-gb', limit: 5, in_use: 4 },
    });
    await expect(snapshotOf(volume)).rejects.toMatchObject({
      data: { resource: 'gigabytes_gold-gb', limit: 5, in_use: 4 },
    });
    await volumes.beginExtendWithinQuota(volume, 3, unlimited);
    expect((await volumes.get(volume.id)).status).toBe(VOLUME_STATES.moves.beginExtend.to);
  });

  test("a type's snapshots limit; the default quota class sets a type's limits for every project", async () => {
    const gold = await newType('gold-snaps');
    await quotas.setClass('default', { 'snapshots_gold-snaps': 1 });
    try {
      const volume = await placed(await create('p-snaps', gold));
      await snapshotOf(volume);
      await expect(snapshotOf(volume)).rejects.toMatchObject({
        message: 'SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded',
        data: { resource: 'snapshots_gold-snaps', limit: 1, in_use: 1 },
      });
      expect(await quotas.limits('p-snaps', unlimited)).toMatchObject({
        'snapshots_gold-snaps': 1,
        'volumes_gold-snaps': -1,
        'gigabytes_gold-snaps': -1,
      });
      expect(await quotas.usage('p-snaps')).toMatchObject({
        'volumes_gold-snaps': 1,
        'snapshots_gold-snaps': 1,
        'gigabytes_gold-snaps': 2,
        volumes: 1,
        snapshots: 1,
        gigabytes: 2,
      });
    } finally {
      await ds.query("DELETE FROM quota_classes WHERE resource = 'snapshots_gold-snaps'");
    }
  });

  test("concurrent creates of one type never exceed the type's limit", async () => {
    const gold = await newType('gold-race');
    await quotas.set('p-race', { 'volumes_gold-race': 3, 'gigabytes_gold-race': 100 });
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => create('p-race', gold)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(
      results
        .filter((r) => r.status === 'rejected')
        .every((r) => (r as PromiseRejectedResult).reason instanceof QuotaExceededError),
    ).toBe(true);
    const [{ n }] = await ds.query(
      'SELECT count(*)::int AS n FROM volumes WHERE project_id = $1 AND volume_type = $2',
      ['p-race', gold],
    );
    expect(n).toBe(3);
  });
});
