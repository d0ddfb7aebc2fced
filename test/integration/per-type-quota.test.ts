import {
  createDataSource,
  type DataSource,
  QuotaRepository,
  VOLUME_STATES,
  type VolumeRepository,
} from '@basalt/db';
import { QuotaExceededError } from '@basalt/errors';
import { createTestDatabase, UNLIMITED_QUOTAS } from '../support/db';
import { quotaRig } from '../support/quota-rig';

const unlimited = UNLIMITED_QUOTAS;

/** Cinder's per-volume-type quotas, decided in PostgreSQL by check_volume_quota. */
describe('per-type quotas in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let rig: ReturnType<typeof quotaRig>;
  let volumes: VolumeRepository;
  let quotas: QuotaRepository;

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 12 });
    await ds.initialize();
    rig = quotaRig(ds);
    volumes = rig.volumes;
    quotas = new QuotaRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test("a type's volumes limit refuses its volumes in Cinder's words, and no other type's", async () => {
    const gold = await rig.newType('gold-volumes');
    const silver = await rig.newType('silver-volumes');
    await quotas.set('p-volumes', { 'volumes_gold-volumes': 1 });
    await rig.create('p-volumes', gold);
    await expect(rig.create('p-volumes', gold)).rejects.toMatchObject({
      message:
        "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold-volumes'.",
      data: { resource: 'volumes_gold-volumes', limit: 1, in_use: 1 },
    });
    await rig.create('p-volumes', silver);
    await rig.create('p-volumes', null);
  });

  test("a type's gigabytes count its volumes and their snapshots; extends and snapshots are checked", async () => {
    const gold = await rig.newType('gold-gb');
    await quotas.set('p-gb', { 'gigabytes_gold-gb': 5 });
    const volume = await rig.placed(await rig.create('p-gb', gold, 2));
    await rig.snapshotOf(volume);
    // 2G volume + 2G snapshot: 2G more does not fit in 5G, whether as a volume, an extend or a snapshot
    await expect(rig.create('p-gb', gold, 2)).rejects.toMatchObject({
      message:
        'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes_gold-gb quota. Requested 2G, quota is 5G and 4G has been consumed.',
    });
    await expect(volumes.beginExtendWithinQuota(volume, 4, unlimited)).rejects.toMatchObject({
      data: { resource: 'gigabytes_gold-gb', limit: 5, in_use: 4 },
    });
    await expect(rig.snapshotOf(volume)).rejects.toMatchObject({
      data: { resource: 'gigabytes_gold-gb', limit: 5, in_use: 4 },
    });
    await volumes.beginExtendWithinQuota(volume, 3, unlimited);
    expect((await volumes.get(volume.id)).status).toBe(VOLUME_STATES.moves.beginExtend.to);
  });

  test("a type's snapshots limit; the default quota class sets a type's limits for every project", async () => {
    const gold = await rig.newType('gold-snaps');
    await quotas.setClass('default', { 'snapshots_gold-snaps': 1 });
    try {
      const volume = await rig.placed(await rig.create('p-snaps', gold));
      await rig.snapshotOf(volume);
      await expect(rig.snapshotOf(volume)).rejects.toMatchObject({
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
    const gold = await rig.newType('gold-race');
    await quotas.set('p-race', { 'volumes_gold-race': 3, 'gigabytes_gold-race': 100 });
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => rig.create('p-race', gold)));
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
