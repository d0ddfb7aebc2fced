import { createDataSource, ensureDatabase, type QuotaLimits } from '@basalt/db';
import { uniqueName } from './rpc';

export const POSTGRES_URL = process.env.BASALT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432';

/** A database of the test's own on `server`, created fresh and migrated; `drop()` removes it. */
export async function createTestDatabase(
  server = POSTGRES_URL,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = uniqueName('basalt_test');
  const url = `${server}/${name}`;
  await ensureDatabase(url);
  const ds = createDataSource({ url, poolSize: 1 });
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
  } finally {
    await ds.destroy();
  }
  return {
    url,
    drop: async () => {
      const admin = createDataSource({ url: `${server}/postgres`, poolSize: 1 });
      await admin.initialize();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin.destroy();
      }
    },
  };
}

/** What the API's create statement takes for a plain 1 GiB volume of project `p`, with no quota. */
export const PLAIN_VOLUME = {
  size: 1,
  projectId: 'p',
  userId: 'u',
  availabilityZone: 'nova',
  displayName: null,
  displayDescription: null,
  volumeType: null,
} as const;
export const NO_QUOTA = { volumes: -1, gigabytes: -1 } as const;

/** Quota defaults under which nothing is refused (-1 for every resource). */
export const UNLIMITED_QUOTAS: QuotaLimits = {
  volumes: -1,
  snapshots: -1,
  gigabytes: -1,
  backups: -1,
  backup_gigabytes: -1,
  per_volume_gigabytes: -1,
  groups: -1,
};
