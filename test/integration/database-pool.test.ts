import { createDataSource } from '@basalt/db';
import { createTestDatabase } from '../support/db';

describe('the connection pool', () => {
  test('an unused connection stays open for idle_timeout, then closes', async () => {
    const database = await createTestDatabase();
    const observer = createDataSource({ url: database.url, poolSize: 1 });
    await observer.initialize();
    const open = async (name: string): Promise<number> =>
      (
        await observer.query(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
          [name],
        )
      )[0].n;
    const brief = createDataSource({
      url: `${database.url}?application_name=brief`,
      poolSize: 1,
      idleTimeoutSec: 0.3,
    });
    const lasting = createDataSource({
      url: `${database.url}?application_name=lasting`,
      poolSize: 1,
      idleTimeoutSec: 30,
    });
    try {
      await brief.initialize();
      await lasting.initialize();
      await Promise.all([brief.query('SELECT 1'), lasting.query('SELECT 1')]);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await open('brief')).toBe(0);
      expect(await open('lasting')).toBe(1);
    } finally {
      await brief.destroy();
      await lasting.destroy();
      await observer.destroy();
      await database.drop();
    }
  }, 30_000);
});
