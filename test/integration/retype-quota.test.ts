import {
  createDataSource,
  type DataSource,
  QuotaRepository,
  VOLUME_STATES,
  type VolumeRecord,
} from '@basalt/db';
import { InvalidStateError, QuotaExceededError } from '@basalt/errors';
import { faultFor } from '../../services/api/src/faults';
import { createTestDatabase, UNLIMITED_QUOTAS } from '../support/db';
import { quotaRig } from '../support/quota-rig';

const { retypeAvailable } = VOLUME_STATES.moves;

/**
 * os-retype under the new type's own quota (Cinder's get_volume_type_reservation with
 * reserve_vol_type_only): `volumes_<type>`, `gigabytes_<type>` with the snapshots' sizes and
 * `snapshots_<type>`, checked under the project's lock; the overall limits are not, since the
 * volume counts in them already.
 */
describe('retype within the new type’s quota, in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let rig: ReturnType<typeof quotaRig>;
  let quotas: QuotaRepository;

  /** A 2G volume of `type` in `project`, placed, with `snapshots` available 2G snapshots. */
  const volumeWith = async (project: string, type: string, snapshots = 0): Promise<VolumeRecord> => {
    const volume = await rig.placed(await rig.create(project, type, 2));
    for (let i = 0; i < snapshots; i++) await rig.availableSnapshotOf(volume);
    return volume;
  };
  const retype = (volume: VolumeRecord, type: string) =>
    rig.volumes.retypeWithinQuota(volume, type, retypeAvailable, UNLIMITED_QUOTAS);
  /** The volume's type and the project's usage: what a refused retype must leave as it was. */
  const state = async (volume: VolumeRecord) => ({
    type: (await rig.volumes.get(volume.id)).volumeType,
    usage: await quotas.usage(volume.projectId),
  });

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 12 });
    await ds.initialize();
    rig = quotaRig(ds);
    quotas = new QuotaRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test("a retype that fits the new type's limits exactly moves the volume's and its snapshots' usage to it", async () => {
    const bronze = await rig.newType('bronze-fit');
    const gold = await rig.newType('gold-fit');
    const volume = await volumeWith('p-fit', bronze, 1);
    // the overall limits are full: a retype adds nothing to them, so they are not checked
    await quotas.set('p-fit', {
      volumes: 1,
      gigabytes: 4,
      snapshots: 1,
      'volumes_gold-fit': 1,
      'gigabytes_gold-fit': 4,
      'snapshots_gold-fit': 1,
    });
    const retyped = await retype(volume, gold);
    expect(retyped).toMatchObject({ volumeType: gold, status: 'available' });
    expect(await quotas.usage('p-fit')).toMatchObject({
      volumes: 1,
      gigabytes: 4,
      snapshots: 1,
      'volumes_gold-fit': 1,
      'gigabytes_gold-fit': 4,
      'snapshots_gold-fit': 1,
      'volumes_bronze-fit': 0,
      'gigabytes_bronze-fit': 0,
      'snapshots_bronze-fit': 0,
    });
  });

  test("the new type's volumes limit refuses with Cinder's 413, and nothing changes", async () => {
    const bronze = await rig.newType('bronze-vols');
    const gold = await rig.newType('gold-vols');
    await rig.create('p-vols', gold);
    const volume = await volumeWith('p-vols', bronze);
    await quotas.set('p-vols', { 'volumes_gold-vols': 1 });
    const before = await state(volume);
    const refusal = await retype(volume, gold).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(QuotaExceededError);
    expect(faultFor(refusal)).toEqual({
      status: 413,
      body: {
        overLimit: {
          code: 413,
          message:
            "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold-vols'.",
          retryAfter: '0',
        },
      },
      retryAfter: '0',
    });
    expect(await state(volume)).toEqual(before);
    expect(before.type).toBe(bronze);
  });

  test("the new type's gigabytes count the snapshots too; Cinder names the volume's size as requested", async () => {
    const bronze = await rig.newType('bronze-gb');
    const gold = await rig.newType('gold-gb2');
    const volume = await volumeWith('p-gb2', bronze, 1);
    // 2G volume + 2G snapshot do not fit in 3G, though the volume alone would
    await quotas.set('p-gb2', { 'gigabytes_gold-gb2': 3 });
    const before = await state(volume);
    await expect(retype(volume, gold)).rejects.toMatchObject({
      message:
        'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes_gold-gb2 quota. Requested 2G, quota is 3G and 0G has been consumed.',
      data: { resource: 'gigabytes_gold-gb2', limit: 3, in_use: 0 },
    });
    expect(await state(volume)).toEqual(before);
  });

  test("the new type's snapshots limit refuses as Cinder's retype does: an unexpected over quota", async () => {
    const bronze = await rig.newType('bronze-snaps');
    const gold = await rig.newType('gold-snaps2');
    const volume = await volumeWith('p-snaps2', bronze, 2);
    await quotas.set('p-snaps2', { 'snapshots_gold-snaps2': 1 });
    const before = await state(volume);
    const refusal = await retype(volume, gold).catch((e: unknown) => e);
    expect(faultFor(refusal)).toEqual({
      status: 413,
      body: {
        overLimit: {
          code: 413,
          message: 'UnexpectedOverQuota: Unexpected over quota on snapshots_gold-snaps2.',
          retryAfter: '0',
        },
      },
      retryAfter: '0',
    });
    expect(await state(volume)).toEqual(before);
    // without snapshots the same limit is no obstacle
    const bare = await volumeWith('p-snaps2', bronze);
    expect(await retype(bare, gold)).toMatchObject({ volumeType: gold });
  });

  test('a volume not in the move’s states is refused after the quota took it, and keeps its type', async () => {
    const bronze = await rig.newType('bronze-state');
    const gold = await rig.newType('gold-state');
    const volume = await volumeWith('p-state', bronze);
    await ds.query("UPDATE volumes SET status = 'in-use' WHERE id = $1", [volume.id]);
    await expect(retype(volume, gold)).rejects.toThrow(InvalidStateError);
    expect((await rig.volumes.get(volume.id)).volumeType).toBe(bronze);
  });

  test("concurrent retypes and creates never take the new type past its limit (the project's lock)", async () => {
    const bronze = await rig.newType('bronze-race');
    const gold = await rig.newType('gold-race2');
    const sources = await Promise.all(Array.from({ length: 6 }, () => volumeWith('p-race2', bronze)));
    await quotas.set('p-race2', { 'volumes_gold-race2': 3 });
    const results = await Promise.allSettled([
      ...sources.map((volume) => retype(volume, gold)),
      ...Array.from({ length: 6 }, () => rig.create('p-race2', gold)),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(QuotaExceededError);
    }
    const createdToo = results.slice(sources.length).filter((r) => r.status === 'fulfilled').length;
    expect(await quotas.usage('p-race2')).toMatchObject({
      'volumes_gold-race2': 3,
      volumes: sources.length + createdToo,
    });
  });
});
