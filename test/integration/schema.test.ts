import {
  ATTACH_STATUSES,
  ATTACHMENT_STATES,
  createDataSource,
  type DataSource,
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
  });

  test('a state outside the table, or deleted without its flag, is refused', async () => {
    const [row] = await ds.query(
      "SELECT * FROM create_volume_within_quota(gen_random_uuid(), 1, 'nova', 'p', 'u', NULL, NULL, NULL, -1, -1, 'volume-%08x')",
    );
    await expect(ds.query("UPDATE volumes SET status = 'lost' WHERE id = $1", [row.id])).rejects.toThrow(
      /volumes_status_check/,
    );
    await expect(ds.query("UPDATE volumes SET status = 'deleted' WHERE id = $1", [row.id])).rejects.toThrow(
      /volumes_deleted_status/,
    );
  });
});
