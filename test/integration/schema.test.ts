import {
  ATTACH_STATUSES,
  ATTACHMENT_STATES,
  createDataSource,
  type DataSource,
  functionSource,
  INSTANCE_STATES,
  MAPPING_STATES,
  SNAPSHOT_STATES,
  SQL_FUNCTIONS,
  VOLUME_STATES,
} from '@basalt/db';
import { createTestDatabase } from '../support/db';

/** What the migrations left in a fresh database is what the code declares. */
describe('the migrated schema', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 2 });
    await ds.initialize();
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  /** The values a column's `CHECK (column IN (…))` constraint allows, in the order it lists them. */
  const allowed = async (constraint: string): Promise<string[]> => {
    const rows: { def: string }[] = await ds.query(
      'SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1',
      [constraint],
    );
    expect(rows).toHaveLength(1);
    return [...(rows[0] as { def: string }).def.matchAll(/'([^']*)'::/g)].map((m) => m[1] as string);
  };

  test("each state column's CHECK allows exactly its state table's states", async () => {
    expect(await allowed('volumes_status_check')).toEqual(VOLUME_STATES.states);
    expect(await allowed('volumes_attach_status_check')).toEqual(ATTACH_STATUSES);
    expect(await allowed('volume_attachments_attach_status_check')).toEqual(ATTACHMENT_STATES.states);
    // the pair's check starts with the literals that join it: '/' and the empty task
    expect((await allowed('instances_state_check')).slice(2)).toEqual(INSTANCE_STATES.states);
    expect(await allowed('block_device_mappings_status_check')).toEqual(MAPPING_STATES.states);
    expect(await allowed('snapshots_status_check')).toEqual(SNAPSHOT_STATES.states);
  });

  test('a state outside the table, or deleted without its flag, is refused', async () => {
    const [row] = await ds.query(
      "SELECT * FROM create_volume_within_quota(gen_random_uuid(), 1, 'nova', 'p', 'u', NULL, NULL, NULL, -1, -1, -1, 'volume-%08x', '{}', NULL, NULL, NULL, NULL, NULL)",
    );
    await expect(ds.query("UPDATE volumes SET status = 'lost' WHERE id = $1", [row.id])).rejects.toThrow(
      /volumes_status_check/,
    );
    await expect(ds.query("UPDATE volumes SET status = 'deleted' WHERE id = $1", [row.id])).rejects.toThrow(
      /volumes_deleted_status/,
    );
  });

  test("every function's live definition is its source in libs/db/sql", async () => {
    const names: { proname: string }[] = await ds.query(
      "SELECT p.proname FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = 'public' ORDER BY 1",
    );
    expect(names.map((r) => r.proname)).toEqual([...SQL_FUNCTIONS].sort());
    // the source run over the live function (then rolled back) must leave the definition as it
    // was: same arguments, result, language, volatility and body (its indentation aside)
    const definition = async (run: (sql: string) => Promise<unknown>, name: string) =>
      (
        (await run(
          `SELECT pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result,
                  l.lanname, p.provolatile, p.prosrc
             FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = '${name}'`,
        )) as Array<{ prosrc: string }>
      ).map((r) => ({ ...r, prosrc: dedent(r.prosrc) }));
    for (const name of SQL_FUNCTIONS) {
      const runner = ds.createQueryRunner();
      await runner.startTransaction();
      try {
        const run = (sql: string) => runner.query(sql);
        const live = await definition(run, name);
        expect(live).toHaveLength(1);
        await runner.query(functionSource(name));
        expect({ name, definition: await definition(run, name) }).toEqual({ name, definition: live });
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    }
  });
});

/** The text with the indentation its lines share removed, and blank ends trimmed. */
function dedent(text: string): string {
  const lines = text.split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0);
  const common = Math.min(...indents);
  return lines
    .map((l) => l.slice(common))
    .join('\n')
    .trim();
}
