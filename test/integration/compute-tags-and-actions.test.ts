import {
  createDataSource,
  ImageRepository,
  INSTANCE_ACTIONS,
  type InstanceAction,
  InstanceActionRepository,
  type InstanceRecord,
  InstanceRepository,
} from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { createTestDatabase } from '../support/db';

const IMAGE = '11111111-2222-4333-8444-555555555555';

/** What nova's 2.49–2.58 keep in the database: server tags, their filters, and action paging. */
describe('server tags and instance action paging in PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  let ds: DataSource;
  let instances: InstanceRepository;
  let actions: InstanceActionRepository;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.url, poolSize: 2 });
    await ds.initialize();
    instances = new InstanceRepository(ds);
    actions = new InstanceActionRepository(ds);
    // an instance names its image
    await new ImageRepository(ds).create({ id: IMAGE, owner: 'p1' });
  });
  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  const server = (name: string, tags?: string[], trustedCerts?: string[]) =>
    instances.create({
      projectId: 'p1',
      userId: 'u1',
      displayName: name,
      flavorId: '1',
      memoryMb: 512,
      vcpus: 1,
      rootGb: 0,
      ephemeralGb: 0,
      imageId: IMAGE,
      ...(tags ? { tags } : {}),
      ...(trustedCerts ? { trustedCerts } : {}),
    });

  test('a server keeps its tags once each; the four tag filters select as nova’s do', async () => {
    const web = await server('web', ['web', 'blue', 'web']);
    const db1 = await server('db', ['db', 'blue']);
    const bare = await server('bare');
    expect(web.tags).toEqual(['web', 'blue']);
    expect((await instances.find(bare.id))?.tags).toEqual([]);
    const names = async (filter: Parameters<InstanceRepository['list']>[0]) =>
      (
        await instances.list(
          { projectId: 'p1', ...filter },
          { limit: 10, sort: [{ key: 'display_name', dir: 'asc' }] },
        )
      ).map((i: InstanceRecord) => i.displayName);
    expect(await names({ tags: ['blue'] })).toEqual(['db', 'web']);
    expect(await names({ tags: ['blue', 'web'] })).toEqual(['web']);
    expect(await names({ tagsAny: ['web', 'db'] })).toEqual(['db', 'web']);
    expect(await names({ notTags: ['blue', 'web'] })).toEqual(['bare', 'db']);
    expect(await names({ notTagsAny: ['web', 'db'] })).toEqual(['bare']);
    expect(await names({ changesBefore: new Date(0) })).toEqual([]);
    // 2.73: no server is locked here
    expect(await names({ locked: true })).toEqual([]);
    expect(await names({ locked: false })).toEqual(['bare', 'db', 'web']);
    const byLocked = { limit: 2, sort: [{ key: 'locked' as const, dir: 'asc' as const }] };
    const first = await instances.list({ projectId: 'p1' }, byLocked);
    const rest = await instances.list(
      { projectId: 'p1' },
      { ...byLocked, marker: first.at(-1)?.id as string },
    );
    expect(new Set([...first, ...rest].map((i) => i.displayName))).toEqual(new Set(['bare', 'db', 'web']));
    // nova's sort keys Basalt has no column for sort by a constant
    for (const key of ['access_ip_v4', 'progress', 'launch_index'] as const) {
      expect(
        await instances.list({ projectId: 'p1', tags: ['blue'] }, { limit: 5, sort: [{ key, dir: 'asc' }] }),
      ).toHaveLength(2);
    }
    expect(await names({ tags: ['web'], changesBefore: new Date(Date.now() + 60_000) })).toEqual(['web']);
    expect(db1.tags).toEqual(['db', 'blue']);
  });

  test('a server keeps the trusted image certificates given at create (2.63), null when none', async () => {
    const trusting = await server('trusting', undefined, ['cert-b', 'cert-a']);
    expect((await instances.find(trusting.id))?.trustedCerts).toEqual(['cert-b', 'cert-a']);
    expect((await server('plain')).trustedCerts).toBeNull();
  });

  test('an action’s updated_at follows its events; lists page by request id and changes-since', async () => {
    const vm = await server('actions');
    const start = (requestId: string) =>
      actions.start({
        instanceUuid: vm.id,
        action: INSTANCE_ACTIONS.extendVolume,
        requestId,
        userId: 'u1',
        projectId: 'p1',
      });
    for (const id of ['req-a', 'req-b', 'req-c']) await start(id);
    const [first] = await actions.list(vm.id, { marker: 'req-b' });
    expect(first?.requestId).toBe('req-a');
    const before = first?.updatedAt as Date;
    expect(await actions.startEvent(vm.id, 'req-a', 'compute_extend_volume', 'compute1')).toBe(true);
    const started = (await actions.find(vm.id, 'req-a'))?.action.updatedAt as Date;
    expect(started.getTime()).toBeGreaterThanOrEqual(before.getTime());
    await actions.finishEvent(vm.id, 'req-a', 'compute_extend_volume', 'resize failed');
    const finished = await actions.find(vm.id, 'req-a');
    expect(finished?.action.updatedAt.getTime()).toBeGreaterThanOrEqual(started.getTime());
    expect(finished?.action.message).toBe('Error');
    expect(finished?.events).toEqual([expect.objectContaining({ result: 'Error', host: 'compute1' })]);
    // no such action: no event and nothing updated
    expect(await actions.startEvent(vm.id, 'req-none', 'compute_extend_volume', 'compute1')).toBe(false);

    const ids = (list: { requestId: string }[]) => list.map((a) => a.requestId);
    expect(ids(await actions.list(vm.id))).toEqual(['req-c', 'req-b', 'req-a']);
    expect(ids(await actions.list(vm.id, { limit: 2 }))).toEqual(['req-c', 'req-b']);
    expect(ids(await actions.list(vm.id, { limit: 2, marker: 'req-b' }))).toEqual(['req-a']);
    expect(await actions.list(vm.id, { limit: 0 })).toEqual([]);
    await expect(actions.list(vm.id, { marker: 'req-x' })).rejects.toThrow(
      new InvalidInputError('Marker req-x could not be found.'),
    );
    const since = finished?.action.updatedAt as Date;
    expect(ids(await actions.list(vm.id, { changesSince: since }))).toEqual(['req-a']);
    expect(ids(await actions.list(vm.id, { changesSince: new Date(since.getTime() + 60_000) }))).toEqual([]);
    // 2.66's changes-before: those updated at or before it
    // (a Date has milliseconds, the column microseconds)
    const after = new Date(since.getTime() + 1);
    expect(ids(await actions.list(vm.id, { changesBefore: after }))).toEqual(['req-c', 'req-b', 'req-a']);
    // req-a changed last (its event); req-b and req-c when they started
    const [newest] = (await actions.list(vm.id, { limit: 1 })) as [InstanceAction];
    const untouched = new Date(newest.updatedAt.getTime() + 1);
    expect(ids(await actions.list(vm.id, { changesBefore: untouched }))).toEqual(['req-c', 'req-b']);
    expect(await actions.list(vm.id, { changesBefore: new Date(0) })).toEqual([]);
  });
});

describe('migration 0086 on the rows recorded before it', () => {
  test("actions get the time they last changed, events the instance's host", async () => {
    const database = await createTestDatabase();
    const ds = createDataSource({ url: database.url, poolSize: 1 });
    await ds.initialize();
    try {
      const applied = async () =>
        ((await ds.query('SELECT name FROM schema_migrations')) as { name: string }[]).map((r) => r.name);
      // written with today's columns, before the later migrations are undone
      await new ImageRepository(ds).create({ id: IMAGE, owner: 'p1' });
      while ((await applied()).includes('ComputeTagsAndActionUpdates1764000000086')) {
        await ds.undoLastMigration({ transaction: 'each' });
      }
      const [vm] = await ds.query(
        `INSERT INTO instances (id, project_id, user_id, display_name, flavor_id, memory_mb, vcpus, root_gb,
                                ephemeral_gb, image_id, vm_state, task_state, host)
         VALUES (gen_random_uuid(), 'p1', 'u1', 'old', '1', 512, 1, 0, 0, $1, 'active', NULL, 'compute7')
         RETURNING id`,
        [IMAGE],
      );
      const [act] = await ds.query(
        `INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id, start_time)
         VALUES ($1, 'extend_volume', 'req-old', 'u1', 'p1', '2026-01-01T00:00:00Z') RETURNING id`,
        [vm.id],
      );
      await ds.query(
        `INSERT INTO instance_actions_events (action_id, event, start_time, finish_time, result)
         VALUES ($1, 'compute_extend_volume', '2026-01-01T00:00:01Z', '2026-01-01T00:00:05Z', 'Success')`,
        [act.id],
      );
      await ds.runMigrations({ transaction: 'each' });
      const found = await new InstanceActionRepository(ds).find(vm.id, 'req-old');
      expect(found?.action.updatedAt.toISOString()).toBe('2026-01-01T00:00:05.000Z');
      expect(found?.events.map((e) => e.host)).toEqual(['compute7']);
      expect((await new InstanceRepository(ds).find(vm.id))?.tags).toEqual([]);
    } finally {
      await ds.destroy();
      await database.drop();
    }
  }, 60_000);
});
