import { adminContext, type RequestContext } from '@basalt/context';
import {
  AttachmentRepository,
  Batcher,
  createDataSource,
  type DataSource,
  IscsiTargetRepository,
  NoFreeTargetError,
  QuotaRepository,
  VOLUME_STATES,
  type VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { QuotaExceededError } from '@basalt/errors';
import { contextOfRequest, recordSpans, type SpanRecorder, SpanStatusCode, withSpan } from '@basalt/trace';
import { createTestDatabase } from '../support/db';

const { finishCreate, failCreate, beginDelete, beginExtend, reset } = VOLUME_STATES.moves;

/** The database is where races are decided: these run many requests at once against real PostgreSQL. */
describe('volume state in PostgreSQL under concurrency', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let volumes: VolumeRepository;
  const newVolume = (projectId: string, size = 1) => ({
    size,
    projectId,
    userId: 'u',
    availabilityZone: 'nova',
    displayName: null,
    displayDescription: null,
    volumeType: null,
  });
  const unlimited = { volumes: -1, gigabytes: -1 };

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 12 });
    await ds.initialize();
    volumes = new VolumeRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test('volume_name_template renders like nova: %08x the sequence number, %s the id', async () => {
    const name = async (template: string, seq: number, id = '00000000-0000-4000-8000-0000000000ab') =>
      (await ds.query('SELECT volume_backend_name($1, $2, $3) AS n', [template, seq, id]))[0].n;
    expect(await name('volume-%08x', 3)).toBe('volume-00000003');
    expect(await name('volume-%08x', 255)).toBe('volume-000000ff');
    expect(await name('volume-%08x', 0x123456789)).toBe('volume-123456789');
    expect(await name('vol-%s', 1)).toBe('vol-00000000-0000-4000-8000-0000000000ab');
    expect(await name('v%d-%x', 42)).toBe('v42-2a');
    expect(await name('plain', 7)).toBe('plain');
    const volume = await volumes.createWithinQuota(newVolume('naming'), 'vol-%s', unlimited);
    expect(volume.backendName).toBe(`vol-${volume.id}`);
  });

  test('a refused quota says which, with the limit and the usage', async () => {
    await volumes.createWithinQuota(newVolume('refused', 3), 'volume-%08x', unlimited);
    await expect(
      volumes.createWithinQuota(newVolume('refused', 2), 'volume-%08x', { volumes: 1, gigabytes: -1 }),
    ).rejects.toMatchObject({
      message: "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'.",
      data: { resource: 'volumes', limit: 1, in_use: 1 },
    });
    await expect(
      volumes.createWithinQuota(newVolume('refused', 2), 'volume-%08x', { volumes: 10, gigabytes: 4 }),
    ).rejects.toMatchObject({
      message:
        'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 4G and 3G has been consumed.',
      data: { resource: 'gigabytes', limit: 4, in_use: 3 },
    });
  });

  test('an extend passes the same quota check: growth that fits starts, growth that does not is refused', async () => {
    const volume = await volumes.createWithinQuota(newVolume('extend-quota', 2), 'volume-%08x', unlimited);
    await volumes.transition(volume.id, finishCreate);
    const limits = { volumes: 1, gigabytes: 5 };
    await expect(volumes.beginExtendWithinQuota(volume, 6, limits)).rejects.toMatchObject({
      message:
        'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 5G and 2G has been consumed.',
      data: { resource: 'gigabytes', limit: 5, in_use: 2 },
    });
    expect((await volumes.get(volume.id)).status).toBe('available');
    // at its volume limit already: an extend adds no volume, so only gigabytes count
    await volumes.beginExtendWithinQuota(volume, 5, limits);
    // the target size is kept with the state, for a worker that has to finish it without the message
    expect(await volumes.get(volume.id)).toMatchObject({ status: 'extending', extendTo: 5 });
  });

  test("a project's own limits take the place of the defaults, in the same round trip", async () => {
    const quotas = new QuotaRepository(ds);
    const defaults = { volumes: 1, gigabytes: 2 };
    await quotas.set('own-limits', { volumes: 3 });
    await volumes.createWithinQuota(newVolume('own-limits'), 'volume-%08x', defaults);
    await volumes.createWithinQuota(newVolume('own-limits'), 'volume-%08x', defaults);
    // its volumes limit is its own (3); gigabytes still come from the defaults (2)
    await expect(
      volumes.createWithinQuota(newVolume('own-limits'), 'volume-%08x', defaults),
    ).rejects.toMatchObject({
      data: { resource: 'gigabytes', limit: 2, in_use: 2 },
    });
    await quotas.set('own-limits', { gigabytes: -1 });
    const third = await volumes.createWithinQuota(newVolume('own-limits'), 'volume-%08x', defaults);
    await expect(
      volumes.createWithinQuota(newVolume('own-limits'), 'volume-%08x', defaults),
    ).rejects.toMatchObject({
      data: { resource: 'volumes', limit: 3, in_use: 3 },
    });
    await volumes.transition(third.id, finishCreate);
    await quotas.set('own-limits', { gigabytes: 3 });
    await expect(volumes.beginExtendWithinQuota(third, 2, defaults)).rejects.toMatchObject({
      data: { resource: 'gigabytes', limit: 3, in_use: 3 },
    });
  });

  test('concurrent creates never exceed the quota', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () =>
        volumes.createWithinQuota(newVolume('quota-race', 2), 'volume-%08x', { volumes: 5, gigabytes: 8 }),
      ),
    );
    const created = results.filter((r) => r.status === 'fulfilled');
    expect(created).toHaveLength(4); // 8 GB / 2 GB each, below the 5-volume limit
    expect(
      results
        .filter((r) => r.status === 'rejected')
        .every((r) => (r as PromiseRejectedResult).reason instanceof QuotaExceededError),
    ).toBe(true);
    const names = created.map(
      (r) => (r as PromiseFulfilledResult<{ backendName: string }>).value.backendName,
    );
    expect(new Set(names).size).toBe(4);
    expect(names.every((n) => /^volume-[0-9a-f]{8}$/.test(n))).toBe(true);
  });

  test('of many concurrent transitions from one state, exactly one wins', async () => {
    const volume = await volumes.createWithinQuota(newVolume('cas'), 'volume-%08x', unlimited);
    await volumes.transition(volume.id, finishCreate);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => volumes.transition(volume.id, beginDelete)),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    await expect(volumes.transitionOrThrow(volume.id, beginExtend)).rejects.toThrow(
      /status must be available, but current status is: deleting/,
    );
    expect((await volumes.get(volume.id)).status).toBe('deleting');
  });

  test("target numbers: concurrent allocations get distinct lowest numbers, again returns the same, a deleted volume's is free again", async () => {
    const targets = new IscsiTargetRepository(ds);
    const made = await Promise.all(
      Array.from({ length: 20 }, () =>
        volumes.createWithinQuota(newVolume('tids'), 'volume-%08x', unlimited),
      ),
    );
    const tids = await Promise.all(made.map((v) => targets.allocate('host-a', v.id, 100)));
    expect([...tids].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const first = made[0]!;
    expect(await targets.allocate('host-a', first.id, 100)).toBe(tids[0]);
    // numbers are per host
    const other = await volumes.createWithinQuota(newVolume('tids'), 'volume-%08x', unlimited);
    expect(await targets.allocate('host-b', other.id, 100)).toBe(1);
    await volumes.transition(first.id, VOLUME_STATES.toward(reset, 'deleting'));
    expect(await volumes.markDeleted([first.id])).toEqual([true]);
    const next = await volumes.createWithinQuota(newVolume('tids'), 'volume-%08x', unlimited);
    expect(await targets.allocate('host-a', next.id, 100)).toBe(tids[0]);
    const full = await volumes.createWithinQuota(newVolume('tids'), 'volume-%08x', unlimited);
    await expect(targets.allocate('host-a', full.id, 20)).rejects.toBeInstanceOf(NoFreeTargetError);
  });

  test('a volume as the scheduler and the worker batch it: placed once, claimed with one secret and target, available, deleted', async () => {
    const made = await Promise.all(
      Array.from({ length: 6 }, () =>
        volumes.createWithinQuota(newVolume('batch'), 'volume-%08x', unlimited),
      ),
    );
    const [a, b, c, d, e, f] = made.map((v) => v.id) as [string, string, string, string, string, string];
    await volumes.transition(f, failCreate);
    // placement takes only for creating volumes no scheduler placed yet
    expect(
      await volumes.placeOnHosts([
        { id: a, host: 'h1' },
        { id: b, host: 'h1' },
        { id: c, host: 'h1' },
        { id: d, host: 'h2' },
        { id: f, host: 'h1' },
      ]),
    ).toEqual([true, true, true, true, false]);
    expect(await volumes.placeOnHosts([{ id: a, host: 'h2' }])).toEqual([false]);
    expect((await volumes.get(a)).host).toBe('h1');
    expect(await volumes.failUnplaced(a, 'no host')).toBe(false);
    expect(await volumes.failUnplaced(e, 'no host')).toBe(true);
    expect(await volumes.get(e)).toMatchObject({ status: 'error', statusReason: 'no host' });

    // claims on h1: distinct lowest target numbers in one statement; d is h2's, e never placed
    const offer = (id: string, n: number) => ({ id, providerAuth: `CHAP user${n}xxxx secret${n}xxxxxxx` });
    const first = await volumes.claimForCreate(
      'h1',
      [offer(a, 1), offer(b, 2), offer(c, 3), offer(d, 4), offer(e, 5)],
      100,
    );
    // distinct lowest numbers, in whatever order the rows came
    expect(
      first
        .slice(0, 3)
        .map((x) => x?.targetNum)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(first.slice(3)).toEqual([undefined, undefined]);
    expect(first[0]?.volume.providerAuth).toBe('CHAP user1xxxx secret1xxxxxxx');
    // a retried claim keeps the first secret and number
    const again = await volumes.claimForCreate('h1', [offer(b, 9)], 100);
    expect(again[0]).toMatchObject({
      targetNum: first[1]?.targetNum,
      volume: { providerAuth: 'CHAP user2xxxx secret2xxxxxxx' },
    });
    expect(await volumes.claimForCreate('h1', [offer(made[5]!.id, 6)], 100)).toEqual([undefined]);
    // out of numbers: that volume's number is null, the others in the batch still get theirs
    const [g, h] = await Promise.all(
      [1, 2].map(() => volumes.createWithinQuota(newVolume('batch'), 'volume-%08x', unlimited)),
    );
    await volumes.placeOnHosts([
      { id: g!.id, host: 'h1' },
      { id: h!.id, host: 'h1' },
    ]);
    const lastNumbers = (await volumes.claimForCreate('h1', [offer(g!.id, 7), offer(h!.id, 8)], 4)).map(
      (x) => x?.targetNum,
    );
    expect(lastNumbers).toEqual(expect.arrayContaining([4, null]));

    expect(
      await volumes.markCreated([
        { id: a, providerLocation: '127.0.0.1:3260,1 iqn.x:a 1' },
        { id: b, providerLocation: '127.0.0.1:3260,2 iqn.x:b 1' },
        { id: e, providerLocation: 'never' },
      ]),
    ).toEqual([true, true, false]);
    expect(await volumes.get(a)).toMatchObject({
      status: 'available',
      providerLocation: '127.0.0.1:3260,1 iqn.x:a 1',
    });
    expect((await volumes.get(a)).launchedAt).toBeInstanceOf(Date);
    expect(await volumes.markCreated([{ id: a, providerLocation: 'again' }])).toEqual([false]);

    // deletes: claimed with their target number, then marked deleted with the number freed and
    // the attachments closed, in a statement each
    const attachments = new AttachmentRepository(ds);
    await attachments.connect(a, { ip: '127.0.0.1', initiator: 'iqn.2026-11.test:a' });
    await volumes.transition(a, beginDelete);
    const toDelete = await volumes.claimForDelete('h1', [a, c, d]);
    expect(toDelete[0]).toMatchObject({ volume: { id: a }, targetNum: first[0]?.targetNum });
    expect(toDelete.slice(1)).toEqual([undefined, undefined]);
    expect(await volumes.markDeleted([a, c])).toEqual([true, false]);
    expect(await volumes.find(a)).toBeUndefined();
    expect(await attachments.live(a)).toEqual([]);
    expect(await ds.query('SELECT 1 FROM iscsi_targets WHERE volume_id = $1', [a])).toEqual([]);
    expect(await volumes.markDeleted([a])).toEqual([false]);
  });

  describe('status changes as spans', () => {
    let recorder: SpanRecorder;
    beforeEach(() => {
      recorder = recordSpans();
    });
    afterEach(() => recorder.stop());

    const create = () => volumes.createWithinQuota(newVolume('spans'), 'volume-%08x', unlimited);

    test('a batched move is a span per volume, each in the trace of the request that asked for it', async () => {
      const [a, b] = [await create(), await create()];
      const placements = new Batcher((batch: readonly { id: string; host: string }[]) =>
        volumes.placeOnHosts(batch),
      );
      const [ctxA, ctxB] = [adminContext(), adminContext()];
      // two handlers asking in the same turn: one statement for both
      await Promise.all(
        [
          [ctxA, a],
          [ctxB, b],
        ].map(([ctx, v]) =>
          withSpan('handler', { parent: contextOfRequest(ctx as RequestContext) }, () =>
            placements.submit({ id: (v as VolumeRecord).id, host: 'h1' }),
          ),
        ),
      );
      const spans = recorder.spans();
      const handlers = spans.filter((s) => s.name === 'handler');
      const moves = spans.filter((s) => s.name === 'volume place');
      expect(moves).toHaveLength(2);
      for (const [i, v] of [a, b].entries()) {
        const move = moves.find((m) => m.attributes['basalt.volume.id'] === v?.id);
        const handler = handlers.find(
          (h) => h.attributes['basalt.request_id'] === [ctxA, ctxB][i]?.requestId,
        );
        expect(move?.parentSpanContext?.spanId).toBe(handler?.spanContext().spanId);
        expect(move?.spanContext().traceId).toBe(handler?.spanContext().traceId);
        expect(move?.attributes).toMatchObject({
          'basalt.status.from': 'creating',
          'basalt.status.to': 'creating',
          'basalt.status.changed': true,
          'basalt.request_id': [ctxA, ctxB][i]?.requestId,
        });
      }
    });

    test('a move into an error state marks its span failed with the reason; a lost race is a plain span', async () => {
      const v = await create();
      await volumes.transition(v.id, failCreate, { statusReason: 'No valid host was found.' });
      await volumes.transition(v.id, failCreate, { statusReason: 'again' });
      const [won, lost] = recorder.spans().filter((s) => s.name === 'volume failCreate');
      expect(won?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'No valid host was found.' });
      expect(won?.attributes['basalt.status.changed']).toBe(true);
      expect(lost?.status.code).toBe(SpanStatusCode.UNSET);
      expect(lost?.attributes['basalt.status.changed']).toBe(false);
    });
  });
});
