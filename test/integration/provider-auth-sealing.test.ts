import { randomBytes } from 'node:crypto';
import { createDataSource, type DataSource, SecretBox, VolumeRepository } from '@basalt/db';
import { SealProviderAuth1764000000050 } from '../../libs/db/src/migrations/0050-seal-provider-auth';
import { createTestDatabase, NO_QUOTA, PLAIN_VOLUME } from '../support/db';

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

/** CHAP secrets in the database: sealed by migration 0050 when stored in clear, resealed on rotation. */
describe('provider_auth sealing', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  const open = async (box?: SecretBox) => {
    const ds = createDataSource({ url: database.url, poolSize: 1, ...(box ? { secretBox: box } : {}) });
    await ds.initialize();
    return ds;
  };
  const stored = async (ds: DataSource) =>
    (await ds.query('SELECT id, provider_auth, host FROM volumes ORDER BY host')) as {
      id: string;
      provider_auth: string;
      host: string;
    }[];

  test('plaintext rows stop the migration without a key, are sealed with one, and reseal on rotation', async () => {
    const k1Key = key('k1');
    const k1 = new SecretBox([k1Key]);
    let ds = await open(k1);
    try {
      // two volumes holding secrets in clear, as they did before 0050
      const repo = new VolumeRepository(ds);
      for (const [n, host] of [
        [1, 'h1'],
        [2, 'h2'],
      ] as const) {
        const v = await repo.createWithinQuota(PLAIN_VOLUME, 'volume-%08x', NO_QUOTA);
        await ds.query('UPDATE volumes SET provider_auth = $1, host = $2 WHERE id = $3', [
          `CHAP user${n}name pass${n}word0123456789`,
          host,
          v.id,
        ]);
      }
    } finally {
      await ds.destroy();
    }

    // migration 0050 run again over them (the later migrations do not touch provider_auth)
    const seal = async (source: DataSource) => {
      const runner = source.createQueryRunner();
      try {
        await new SealProviderAuth1764000000050().up(runner);
      } finally {
        await runner.release();
      }
    };
    ds = await open();
    try {
      await expect(seal(ds)).rejects.toThrow(
        '2 volume(s) hold CHAP secrets in clear: set [volume] secret_keys and run basalt db migrate again',
      );
      expect((await stored(ds)).map((r) => r.provider_auth)).toEqual([
        'CHAP user1name pass1word0123456789',
        'CHAP user2name pass2word0123456789',
      ]);
    } finally {
      await ds.destroy();
    }

    ds = await open(k1);
    try {
      await seal(ds);
      const rows = await stored(ds);
      for (const row of rows) {
        expect(row.provider_auth).toMatch(/^enc:v1:k1:/);
        expect(row.provider_auth).not.toMatch(/pass\dword/);
      }
      expect(k1.open(rows[0]!.provider_auth, `volumes.provider_auth:${rows[0]!.id}`)).toBe(
        'CHAP user1name pass1word0123456789',
      );

      // a new key first: h1's worker reseals its own rows, h2's stay under k1 until its worker does
      const rotated = new SecretBox([key('k2'), k1Key]);
      const repo = new VolumeRepository(ds);
      const unopenable: string[] = [];
      const skip = async (id: string) => {
        unopenable.push(id);
        return undefined;
      };
      expect(await repo.resealSecrets('h1', rotated, skip)).toBe(1);
      expect(await repo.resealSecrets('h1', rotated, skip)).toBe(0);
      expect(unopenable).toEqual([]);
      // a worker whose keys no longer open a row reports it and leaves it, and reseals the rest
      expect(await repo.resealSecrets('h2', new SecretBox([key('k3')]), skip)).toBe(0);
      expect(unopenable).toEqual([(await stored(ds))[1]?.id]);
      const after = await stored(ds);
      expect(after.map((r) => r.provider_auth.slice(0, 10))).toEqual(['enc:v1:k2:', 'enc:v1:k1:']);
      expect(rotated.open(after[0]!.provider_auth, `volumes.provider_auth:${after[0]!.id}`)).toBe(
        'CHAP user1name pass1word0123456789',
      );

      // credentials recovered elsewhere for a row that does not open are sealed in its place
      const current = new SecretBox([key('k4')]);
      const recovered = { user: 'Kept0user', password: 'Kept0password1234' };
      expect(await repo.resealSecrets('h2', current, async () => recovered)).toBe(1);
      const h2 = (await stored(ds))[1]!;
      expect(h2.provider_auth).toMatch(/^enc:v1:k4:/);
      expect(h2.provider_auth).not.toContain('Kept0password1234');
      expect(current.open(h2.provider_auth, `volumes.provider_auth:${h2.id}`)).toBe(
        'CHAP Kept0user Kept0password1234',
      );
      expect(await repo.resealSecrets('h2', current, async () => recovered)).toBe(0);
    } finally {
      await ds.destroy();
    }
  }, 60_000);
});
