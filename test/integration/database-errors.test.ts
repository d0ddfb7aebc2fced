import { createDataSource, type DataSource, isTransientDatabaseError } from '@basalt/db';
import { createTestDatabase, POSTGRES_URL } from '../support/db';

/** Handlers are retried on these errors only, so the classification is checked against real PostgreSQL failures. */
describe('which database errors are worth a retry', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 3 });
    await ds.initialize();
  }, 30_000);
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  const failureOf = async (work: () => Promise<unknown>): Promise<unknown> => {
    try {
      await work();
    } catch (error) {
      return error;
    }
    throw new Error('expected a failure');
  };

  /** A connection of its own (a dropped one may still sit in a shared pool for a moment). */
  const ownRunner = async () => {
    const own = createDataSource({ url: database.url, poolSize: 1 });
    await own.initialize();
    const runner = own.createQueryRunner();
    return Object.assign(runner, {
      done: async () => {
        await runner.release().catch(() => undefined);
        await own.destroy();
      },
    });
  };

  test('a statement whose connection the server dropped under it is', async () => {
    const runner = await ownRunner();
    await runner.connect();
    try {
      const [{ pid }] = await runner.query('SELECT pg_backend_pid() AS pid');
      const sleeping = failureOf(() => runner.query('SELECT pg_sleep(10)'));
      await new Promise((r) => setTimeout(r, 200));
      await ds.query('SELECT pg_terminate_backend($1)', [pid]);
      expect(isTransientDatabaseError(await sleeping)).toBe(true);
    } finally {
      await runner.done();
    }
  });

  test('a held connection the server dropped is, whichever way the driver reports it', async () => {
    const runner = await ownRunner();
    await runner.connect();
    try {
      const [{ pid }] = await runner.query('SELECT pg_backend_pid() AS pid');
      await ds.query('SELECT pg_terminate_backend($1)', [pid]);
      const error = await failureOf(() => runner.query('SELECT 1'));
      expect(isTransientDatabaseError(error)).toBe(true);
    } finally {
      await runner.done();
    }
  });

  test('a server that refuses connections is', async () => {
    const nowhere = new URL(POSTGRES_URL);
    nowhere.port = '1';
    const error = await failureOf(() => createDataSource({ url: `${nowhere}/x`, poolSize: 1 }).initialize());
    expect(isTransientDatabaseError(error)).toBe(true);
  });

  test('a lost serialization race is', async () => {
    await ds.query('CREATE TABLE counters (id int PRIMARY KEY, n int)');
    await ds.query('INSERT INTO counters VALUES (1, 0)');
    const a = ds.createQueryRunner();
    const b = ds.createQueryRunner();
    try {
      await a.startTransaction('SERIALIZABLE');
      await b.startTransaction('SERIALIZABLE');
      await a.query('SELECT n FROM counters WHERE id = 1');
      await b.query('SELECT n FROM counters WHERE id = 1');
      await a.query('UPDATE counters SET n = n + 1 WHERE id = 1');
      await a.commitTransaction();
      const error = await failureOf(() => b.query('UPDATE counters SET n = n + 1 WHERE id = 1'));
      expect(isTransientDatabaseError(error)).toBe(true);
    } finally {
      await b.rollbackTransaction().catch(() => undefined);
      await a.release();
      await b.release();
    }
  });

  test('bad SQL, a broken constraint and a quota refusal are not', async () => {
    expect(isTransientDatabaseError(await failureOf(() => ds.query('SELEC 1')))).toBe(false);
    expect(
      isTransientDatabaseError(
        await failureOf(() =>
          ds.query("INSERT INTO quotas (project_id, resource, hard_limit) VALUES ('p', 'volumes', -5)"),
        ),
      ),
    ).toBe(false);
    expect(
      isTransientDatabaseError(
        await failureOf(() => ds.query('SELECT check_volume_quota($1, 1, 1, 0, 0)', ['p'])),
      ),
    ).toBe(false);
  });
});
