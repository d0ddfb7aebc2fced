import {
  AttachmentRepository,
  createDataSource,
  type DataSource,
  VOLUME_STATES,
  VolumeRepository,
  type VolumeStatus,
} from '@basalt/db';
import { createTestDatabase, NO_QUOTA, PLAIN_VOLUME } from '../support/db';

/** attach_volume and detach_volume as statements: which connection they mark, which states they move. */
describe('attachments in PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let volumes: VolumeRepository;
  let attachments: AttachmentRepository;
  const hostA = { ip: '10.0.0.1', initiator: 'iqn.2026-11.test:host-a', host: 'host-a' };
  const hostB = { ip: '10.0.0.2', initiator: 'iqn.2026-11.test:host-b', host: 'host-b' };
  const instance1 = '11111111-1111-4111-8111-111111111111';
  const instance2 = '22222222-2222-4222-8222-222222222222';

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 2 });
    await ds.initialize();
    volumes = new VolumeRepository(ds);
    attachments = new AttachmentRepository(ds);
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  /** What the compute API's reservations will do (an admin's reset stands in for them here). */
  const moveTo = (id: string, status: VolumeStatus) =>
    volumes.transitionOrThrow(id, VOLUME_STATES.toward(VOLUME_STATES.moves.reset, status));
  /** A volume in `status`, created through the API's statement and moved there. */
  const volumeIn = async (status: 'available' | 'attaching' | 'in-use' | 'detaching') => {
    const volume = await volumes.createWithinQuota(PLAIN_VOLUME, 'volume-%08x', NO_QUOTA);
    await moveTo(volume.id, status);
    return volume.id;
  };
  const attach = (volumeId: string, initiator: string, instanceUuid = instance1) =>
    attachments.markAttached(volumeId, {
      initiator,
      instanceUuid,
      mountpoint: '/dev/vdb',
      host: 'compute-1',
    });

  test("connect returns the ACL's addresses before and after, one row per initiator", async () => {
    const id = await volumeIn('attaching');
    expect(await attachments.connect(id, hostA)).toEqual({ previous: [], current: ['10.0.0.1'] });
    expect(await attachments.connect(id, hostB)).toEqual({
      previous: ['10.0.0.1'],
      current: ['10.0.0.1', '10.0.0.2'],
    });
    // the same initiator again, from a new address: its row moves, the old address leaves
    expect(await attachments.connect(id, { ...hostA, ip: '10.0.0.9' })).toEqual({
      previous: ['10.0.0.1', '10.0.0.2'],
      current: ['10.0.0.2', '10.0.0.9'],
    });
    expect(await attachments.connect(id, hostB)).toEqual({
      previous: ['10.0.0.2', '10.0.0.9'],
      current: ['10.0.0.2', '10.0.0.9'],
    });
    expect((await attachments.live(id)).map((a) => a.ip)).toEqual(['10.0.0.9', '10.0.0.2']);
    expect(await attachments.liveAddresses(id)).toEqual(['10.0.0.2', '10.0.0.9']);
  });

  test('attach marks the connection of the initiator that connected, not every live one', async () => {
    const id = await volumeIn('attaching');
    await attachments.connect(id, hostA);
    await attachments.connect(id, hostB);
    expect(await attach(id, hostB.initiator)).toBe(true);
    const [a, b] = await attachments.live(id);
    expect(a).toMatchObject({ initiator: hostA.initiator, attachStatus: 'connected', instanceUuid: null });
    expect(b).toMatchObject({
      initiator: hostB.initiator,
      attachStatus: 'attached',
      instanceUuid: instance1,
      mountpoint: '/dev/vdb',
      connectorHost: 'compute-1',
    });
    expect(await volumes.get(id)).toMatchObject({ status: 'in-use', attachStatus: 'attached' });
  });

  test('attach again for the same instance succeeds and changes nothing; for another instance it is refused', async () => {
    const id = await volumeIn('attaching');
    await attachments.connect(id, hostA);
    expect(await attach(id, hostA.initiator)).toBe(true);
    expect(await attach(id, hostA.initiator)).toBe(true);
    expect(await attach(id, hostA.initiator, instance2)).toBe(false);
    expect((await attachments.live(id))[0]?.instanceUuid).toBe(instance1);
    expect((await volumes.get(id)).status).toBe('in-use');
  });

  test('a volume in use takes no second instance, whatever initiator connected for it', async () => {
    const id = await volumeIn('attaching');
    await attachments.connect(id, hostA);
    await attach(id, hostA.initiator);
    await attachments.connect(id, hostB);
    expect(await attach(id, hostB.initiator, instance2)).toBe(false);
    expect((await attachments.live(id)).map((a) => a.attachStatus)).toEqual(['attached', 'connected']);
  });

  test('attach needs the volume attaching and a connection from that initiator', async () => {
    const available = await volumeIn('available');
    await attachments.connect(available, hostA);
    expect(await attach(available, hostA.initiator)).toBe(false);
    expect((await attachments.live(available))[0]?.attachStatus).toBe('connected');
    expect((await volumes.get(available)).status).toBe('available');

    const unconnected = await volumeIn('attaching');
    expect(await attach(unconnected, hostA.initiator)).toBe(false);
    expect((await volumes.get(unconnected)).status).toBe('attaching');
  });

  test('detach: available once no connection is attached, in-use while another is', async () => {
    const id = await volumeIn('attaching');
    await attachments.connect(id, hostA);
    await attach(id, hostA.initiator);
    await attachments.connect(id, hostB);
    await moveTo(id, 'attaching');
    await attach(id, hostB.initiator, instance2);

    await moveTo(id, 'detaching');
    await attachments.disconnect(id, hostA.initiator);
    expect(await attachments.markDetached(id)).toBe('in-use');
    expect(await volumes.get(id)).toMatchObject({ status: 'in-use', attachStatus: 'attached' });

    await moveTo(id, 'detaching');
    await attachments.disconnect(id, hostB.initiator);
    expect(await attachments.markDetached(id)).toBe('available');
    expect(await volumes.get(id)).toMatchObject({ status: 'available', attachStatus: 'detached' });
    // nothing left to detach: a second run moves nothing
    expect(await attachments.markDetached(id)).toBeUndefined();
  });

  test('a failed attach rolls back: attaching goes back to available', async () => {
    const id = await volumeIn('attaching');
    await attachments.connect(id, hostA);
    await attachments.disconnect(id, hostA.initiator);
    expect(await attachments.markDetached(id)).toBe('available');
    expect((await volumes.get(id)).status).toBe('available');
  });

  test('detach leaves a volume in any other state alone', async () => {
    for (const status of ['available', 'in-use'] as const) {
      const id = await volumeIn(status);
      expect(await attachments.markDetached(id)).toBeUndefined();
      expect((await volumes.get(id)).status).toBe(status);
    }
  });

  describe("os-attach's recorded attachments (no connection behind them)", () => {
    const record = (volumeId: string, instanceUuid: string | null = instance1) =>
      attachments.record(volumeId, { instanceUuid, mountpoint: '/dev/vdb', host: 'host-x' });

    test('record: from available or attaching the volume is in use at once, an attachment with no initiator', async () => {
      for (const status of ['available', 'attaching'] as const) {
        const id = await volumeIn(status);
        const recorded = await record(id);
        expect(recorded).toMatchObject({
          initiator: null,
          ip: null,
          instanceUuid: instance1,
          mountpoint: '/dev/vdb',
          connectorHost: 'host-x',
          attachStatus: 'attached',
        });
        expect(await volumes.get(id)).toMatchObject({ status: 'in-use', attachStatus: 'attached' });
        // no address to export to
        expect(await attachments.liveAddresses(id)).toEqual([]);
      }
    });

    test('record refuses a volume in use or in any other state, and writes nothing', async () => {
      const id = await volumeIn('available');
      await record(id);
      expect(await record(id, instance2)).toBeUndefined();
      expect((await attachments.live(id)).map((a) => a.instanceUuid)).toEqual([instance1]);
      const detaching = await volumeIn('detaching');
      expect(await record(detaching)).toBeUndefined();
      expect(await attachments.live(detaching)).toEqual([]);
      expect((await volumes.get(detaching)).status).toBe('detaching');
    });

    test('endRecorded: available again and the attachment gone; again, nothing moves', async () => {
      const id = await volumeIn('available');
      const recorded = await record(id);
      expect(await attachments.endRecorded(id, recorded?.id, false)).toBe('available');
      expect(await volumes.get(id)).toMatchObject({ status: 'available', attachStatus: 'detached' });
      expect(await attachments.live(id)).toEqual([]);
      expect(await attachments.endRecorded(id, recorded?.id, false)).toBeUndefined();
    });

    test('endRecorded leaves a connection a compute host made alone', async () => {
      const id = await volumeIn('attaching');
      await attachments.connect(id, hostA);
      await attach(id, hostA.initiator);
      expect(await attachments.endRecorded(id, undefined, true)).toBeUndefined();
      expect(await volumes.get(id)).toMatchObject({ status: 'in-use', attachStatus: 'attached' });
      expect((await attachments.live(id))[0]?.attachStatus).toBe('attached');
    });

    test('a plain detach needs the volume in use; a forced one takes it from error too', async () => {
      const id = await volumeIn('available');
      const recorded = await record(id);
      await moveTo(id, 'error');
      expect(await attachments.endRecorded(id, recorded?.id, false)).toBeUndefined();
      expect((await attachments.live(id)).length).toBe(1);
      expect(await attachments.endRecorded(id, recorded?.id, true)).toBe('available');
      expect(await volumes.get(id)).toMatchObject({ status: 'available', attachStatus: 'detached' });
    });
  });
});
