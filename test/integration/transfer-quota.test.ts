import {
  createDataSource,
  type DataSource,
  QuotaRepository,
  TransferRepository,
  type VolumeRecord,
} from '@basalt/db';
import { InvalidStateError, QuotaExceededError } from '@basalt/errors';
import { faultFor } from '../../services/api/src/faults';
import { createTestDatabase, UNLIMITED_QUOTAS } from '../support/db';
import { quotaRig } from '../support/quota-rig';

/**
 * A volume transfer's accept as Cinder's transfer API does it: the acceptor's quota must take the
 * volume (volumes, gigabytes) and, unless the transfer is no_snapshots, its snapshots (snapshots,
 * and their sizes in gigabytes, overall and of the volume's type, counted after the volume); then
 * the volume and its snapshots, with their usage, move to the acceptor. Refused, nothing moves.
 */
describe('transfer accept within the acceptor’s quota, in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let rig: ReturnType<typeof quotaRig>;
  let quotas: QuotaRepository;
  let transfers: TransferRepository;

  /** A 2G volume of `type` in `donor` with `snapshots` available 2G snapshots, offered for transfer. */
  const offered = async (donor: string, type: string, snapshots: number, noSnapshots = false) => {
    const volume = await rig.placed(await rig.create(donor, type, 2));
    for (let i = 0; i < snapshots; i++) await rig.availableSnapshotOf(volume);
    const { transfer, authKey } = await transfers.create(volume, 't', noSnapshots);
    return { volume, transfer, authKey };
  };
  const accept = (offer: Awaited<ReturnType<typeof offered>>, acceptor: string) =>
    transfers.accept(
      offer.transfer.id,
      offer.authKey,
      { projectId: acceptor, userId: `${acceptor}-user` },
      UNLIMITED_QUOTAS,
    );
  /** Who owns the volume and its snapshots, the transfer, and both projects' usage. */
  const state = async (volume: VolumeRecord, transferId: string, acceptor: string) => ({
    volume: await ds.query('SELECT project_id, user_id, status FROM volumes WHERE id = $1', [volume.id]),
    snapshots: await ds.query(
      'SELECT project_id, user_id, status FROM snapshots WHERE volume_id = $1 ORDER BY id',
      [volume.id],
    ),
    transfer: await transfers.find(transferId, undefined),
    donor: await quotas.usage(volume.projectId),
    acceptor: await quotas.usage(acceptor),
  });

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 4 });
    await ds.initialize();
    rig = quotaRig(ds);
    quotas = new QuotaRepository(ds);
    transfers = new TransferRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test('accepted, the volume and its snapshots move to the acceptor, and their usage with them', async () => {
    const gold = await rig.newType('gold-move');
    const offer = await offered('p-donor-move', gold, 2);
    // exactly what the volume and its snapshots need, overall and of the type: their usage after
    const needed = {
      volumes: 1,
      snapshots: 2,
      gigabytes: 6,
      'volumes_gold-move': 1,
      'snapshots_gold-move': 2,
      'gigabytes_gold-move': 6,
    };
    await quotas.set('p-acc-move', needed);
    const { volume } = await accept(offer, 'p-acc-move');
    expect(volume).toMatchObject({ projectId: 'p-acc-move', userId: 'p-acc-move-user', status: 'available' });
    const after = await state(offer.volume, offer.transfer.id, 'p-acc-move');
    expect(after.snapshots).toEqual([
      { project_id: 'p-acc-move', user_id: 'p-acc-move-user', status: 'available' },
      { project_id: 'p-acc-move', user_id: 'p-acc-move-user', status: 'available' },
    ]);
    expect(after.transfer).toBeUndefined();
    expect(after.acceptor).toMatchObject(needed);
    expect(after.donor).toMatchObject({
      volumes: 0,
      snapshots: 0,
      gigabytes: 0,
      'snapshots_gold-move': 0,
      'gigabytes_gold-move': 0,
    });
  });

  test.each([
    ['snapshots', false],
    ['snapshots', true],
    ['gigabytes', false],
    ['gigabytes', true],
  ] as const)(
    "the acceptor's %s limit (of the type: %s) refuses the snapshots with Cinder's 413, and nothing moves",
    async (kind, ofType) => {
      const typeName = `gold-${kind}-${ofType}`;
      const gold = await rig.newType(typeName);
      const resource = ofType ? `${kind}_${typeName}` : kind;
      const acceptor = `p-acc-${resource}`;
      const offer = await offered(`p-donor-${resource}`, gold, 2);
      // the volume (1, 2G) fits; its two snapshots (4G) do not: one snapshot allowed, or 5G of
      // which the volume, counted first as Cinder reserves it first, takes 2G
      const limit = kind === 'snapshots' ? 1 : 5;
      const message =
        kind === 'snapshots'
          ? 'SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded'
          : `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed ${resource} quota. Requested 4G, quota is 5G and 2G has been consumed.`;
      await quotas.set(acceptor, { [resource]: limit });
      const before = await state(offer.volume, offer.transfer.id, acceptor);
      const refusal = await accept(offer, acceptor).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(QuotaExceededError);
      expect(faultFor(refusal)).toEqual({
        status: 413,
        body: { overLimit: { code: 413, message, retryAfter: '0' } },
        retryAfter: '0',
      });
      expect(await state(offer.volume, offer.transfer.id, acceptor)).toEqual(before);
      expect(before.volume).toEqual([
        { project_id: `p-donor-${resource}`, user_id: 'u', status: 'awaiting-transfer' },
      ]);
      // with room made, the same transfer is accepted
      await quotas.set(acceptor, { [resource]: -1 });
      await accept(offer, acceptor);
      expect(await quotas.usage(acceptor)).toMatchObject({ volumes: 1, snapshots: 2, gigabytes: 6 });
    },
  );

  test("the volume's own quota still refuses first, in Cinder's words for volumes", async () => {
    const gold = await rig.newType('gold-vol');
    const offer = await offered('p-donor-vol', gold, 1);
    await quotas.set('p-acc-vol', { 'volumes_gold-vol': 0 });
    const before = await state(offer.volume, offer.transfer.id, 'p-acc-vol');
    await expect(accept(offer, 'p-acc-vol')).rejects.toMatchObject({
      message:
        "VolumeLimitExceeded: Maximum number of volumes allowed (0) exceeded for quota 'volumes_gold-vol'.",
    });
    expect(await state(offer.volume, offer.transfer.id, 'p-acc-vol')).toEqual(before);
  });

  test('a no_snapshots transfer leaves the snapshots, and their quota, with the donor', async () => {
    const gold = await rig.newType('gold-nosnaps');
    const offer = await offered('p-donor-nosnaps', gold, 2, true);
    await quotas.set('p-acc-nosnaps', { snapshots: 0, gigabytes: 2 });
    await accept(offer, 'p-acc-nosnaps');
    const after = await state(offer.volume, offer.transfer.id, 'p-acc-nosnaps');
    expect(after.snapshots.map((s: { project_id: string }) => s.project_id)).toEqual([
      'p-donor-nosnaps',
      'p-donor-nosnaps',
    ]);
    expect(after.acceptor).toMatchObject({ volumes: 1, snapshots: 0, gigabytes: 2 });
    expect(after.donor).toMatchObject({ volumes: 0, snapshots: 2, gigabytes: 4 });
  });

  test('a snapshot no longer available refuses the accept (Cinder’s InvalidSnapshot), and nothing moves', async () => {
    const gold = await rig.newType('gold-unready');
    const offer = await offered('p-donor-unready', gold, 2);
    const [last] = await ds.query('SELECT id FROM snapshots WHERE volume_id = $1 ORDER BY id DESC LIMIT 1', [
      offer.volume.id,
    ]);
    await ds.query("UPDATE snapshots SET status = 'error' WHERE id = $1", [last.id]);
    const before = await state(offer.volume, offer.transfer.id, 'p-acc-unready');
    await expect(accept(offer, 'p-acc-unready')).rejects.toThrow(
      new InvalidStateError(
        `Invalid snapshot: Transfer ${offer.transfer.id}: Snapshot ${last.id} is not in the expected available state.`,
      ),
    );
    expect(await state(offer.volume, offer.transfer.id, 'p-acc-unready')).toEqual(before);
  });

  test('a volume with a snapshot not available cannot be offered with its snapshots, as in Cinder', async () => {
    const gold = await rig.newType('gold-offer');
    const volume = await rig.placed(await rig.create('p-donor-offer', gold, 1));
    const snapshot = await rig.snapshotOf(volume);
    await expect(transfers.create(volume, 't', false)).rejects.toThrow(
      `Invalid snapshot: snapshot: ${snapshot.id} status must be available`,
    );
    expect((await rig.volumes.get(volume.id)).status).toBe('available');
    // without its snapshots it may go
    await transfers.create(volume, 't', true);
    expect((await rig.volumes.get(volume.id)).status).toBe('awaiting-transfer');
  });
});
