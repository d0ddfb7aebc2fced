import { createDataSource, DatabaseUnavailableError } from './data-source';

/** The database's credentials come from `[database] connection` alone, never from pg's environment or ~/.pgpass. */
describe('createDataSource credentials', () => {
  const password = (url: string) =>
    (
      createDataSource({ url, poolSize: 1 }).options as { extra: { password: () => string } }
    ).extra.password();

  test("the password is the URL's, decoded, and empty when the URL has none, whatever PGPASSWORD says", () => {
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = 'from-the-environment';
    try {
      expect(password('postgres://basalt:p%40ss%3Aword@127.0.0.1:5432/basalt')).toBe('p@ss:word');
      expect(password('postgres://basalt@127.0.0.1:5432/basalt')).toBe('');
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
  });

  test('server, user and database go to pg one by one, not as a connection string pg would fill from PG*', () => {
    const options = createDataSource({ url: 'postgres://basalt@[::1]:5433/db1', poolSize: 1 })
      .options as Record<string, unknown>;
    expect(options).toMatchObject({ host: '::1', port: 5433, username: 'basalt', database: 'db1' });
    expect(options.url).toBeUndefined();
  });

  test('a URL that leaves the user, host or database to the environment is refused', () => {
    for (const url of [
      'postgres://127.0.0.1:5432/basalt',
      'postgres://u@127.0.0.1:5432',
      'postgres://u@127.0.0.1/db?host=/tmp',
      'postgres://u@127.0.0.1/db?password=x',
    ]) {
      expect(() => createDataSource({ url, poolSize: 1 })).toThrow(DatabaseUnavailableError);
    }
  });
});
