import { createDataSource, migrations } from '@basalt/db';
import { createTestDatabase } from '../support/db';

/** `basalt db migrate` must be reversible step by step: an operator rolling back a release needs every `down`. */
describe('migrations', () => {
  test('every migration can be undone, newest first, and applied again', async () => {
    const database = await createTestDatabase();
    const ds = createDataSource({ url: database.url, poolSize: 1 });
    await ds.initialize();
    try {
      const applied = async () =>
        ((await ds.query('SELECT name FROM schema_migrations ORDER BY id')) as { name: string }[]).map(
          (r) => r.name,
        );
      const all = migrations.map((m) => new m().name);
      expect(await applied()).toEqual(all);
      for (let left = all.length - 1; left >= 0; left--) {
        await ds.undoLastMigration({ transaction: 'each' });
        expect(await applied()).toEqual(all.slice(0, left));
      }
      const tables: { n: number }[] = await ds.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'",
      );
      expect(tables[0]?.n).toBe(0);
      const functions: { n: number }[] = await ds.query(
        "SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = 'public'",
      );
      expect(functions[0]?.n).toBe(0);
      await ds.runMigrations({ transaction: 'each' });
      expect(await applied()).toEqual(all);
      // the functions the last migrations left behind work after the round trip
      const [row] = await ds.query(
        "SELECT * FROM create_volume_within_quota(gen_random_uuid(), 1, 'nova', 'p', 'u', NULL, NULL, NULL, -1, -1, -1, 'volume-%08x', '{}', NULL, NULL, NULL, NULL, NULL)",
      );
      expect(row.backend_name).toBe('volume-00000001');
    } finally {
      await ds.destroy();
      await database.drop();
    }
  }, 60_000);
});
