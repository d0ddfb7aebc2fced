import {
  compareAndSwap,
  compareAndSwapEach,
  createDataSource,
  type DataSource,
  keysetPage,
  type StatefulTable,
  stateTable,
} from '@basalt/db';
import { createTestDatabase } from '../support/db';

/**
 * The compare-and-swap and pagination helpers serve any table: here one whose state is a pair of
 * columns, as an instance's vm_state and task_state are.
 */
describe('generic state helpers on a two-column state', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  const THINGS = stateTable('thing', ['building/spawning', 'active/', 'active/rebooting', 'deleted/'], {
    spawned: { from: ['building/spawning'], to: 'active/', by: ['compute-worker'] },
    reboot: { from: ['active/'], to: 'active/rebooting', by: ['api'] },
    remove: { from: ['building/spawning', 'active/', 'active/rebooting'], to: 'deleted/', by: ['api'] },
  });
  const table: StatefulTable<{ host?: string }> = {
    table: 'things',
    stateColumn: ['vm_state', 'task_state'],
    columns: { host: 'host' },
    deletedState: 'deleted/',
  };
  const ids = [
    '00000000-0000-4000-8000-000000000001',
    '00000000-0000-4000-8000-000000000002',
    '00000000-0000-4000-8000-000000000003',
  ] as const;

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 4 });
    await ds.initialize();
    await ds.query(`CREATE TABLE things (
      id uuid PRIMARY KEY, vm_state text NOT NULL, task_state text, host text, name text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(), deleted boolean NOT NULL DEFAULT false, deleted_at timestamptz)`);
    await ds.query(
      "INSERT INTO things (id, vm_state, task_state, name) SELECT unnest($1::uuid[]), 'building', 'spawning', unnest($2::text[])",
      [ids, ['c', 'a', 'b']],
    );
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  test('a move writes both columns, NULL for an empty part, and only from its sources', async () => {
    const { spawned, reboot, remove } = THINGS.moves;
    expect(await compareAndSwap(ds, table, ids[0], spawned, { host: 'h1' })).toMatchObject({
      vm_state: 'active',
      task_state: null,
      host: 'h1',
    });
    expect(await compareAndSwap(ds, table, ids[0], spawned, {})).toBeUndefined();
    expect(await compareAndSwapEach(ds, table, reboot, [{ id: ids[0] }, { id: ids[1] }], [])).toEqual([
      true,
      false,
    ]);
    expect(await compareAndSwap(ds, table, ids[2], remove, {})).toMatchObject({
      vm_state: 'deleted',
      task_state: null,
      deleted: true,
    });
    // a deleted row is out of reach of every move
    expect(await compareAndSwap(ds, table, ids[2], remove, {})).toBeUndefined();
  });

  test('keyset pages walk the live rows in order, and a marker outside the scope is refused', async () => {
    const listing = { table: 'things', sortColumns: { name: 'name', id: 'id' } };
    const scope = [['NOT deleted'] as const];
    const page = (marker?: string) =>
      keysetPage(
        ds,
        listing,
        { scope, filters: [] },
        { limit: 1, sort: [{ key: 'name', dir: 'asc' }], marker },
      );
    const first = await page();
    expect(first.map((r) => r.name)).toEqual(['a']);
    const second = await page(String(first[0]?.id));
    expect(second.map((r) => r.name)).toEqual(['c']);
    expect(await page(String(second[0]?.id))).toEqual([]);
    await expect(page(ids[2])).rejects.toThrow(`Marker ${ids[2]} could not be found.`);
  });
});
