import { randomUUID } from 'node:crypto';
import { createDataSource, migrations } from '@basalt/db';
import type { DataSource } from 'typeorm';
import { createTestDatabase } from '../support/db';

/** Rows placed before volumes recorded their pool take their host's pool from a later placement. */
describe('the pool backfill of volumes placed before 0042', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.url, poolSize: 2 });
    await ds.initialize();
  }, 60_000);
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  }, 60_000);

  const volume = async (host: string | null, pool: string | null, scheduledAgoSec: number) => {
    const id = randomUUID();
    await ds.query(
      `INSERT INTO volumes (id, backend_name, size, status, availability_zone, project_id, user_id, host, pool, scheduled_at)
       VALUES ($1::uuid, $1::text, 1, 'available', 'nova', 'p', 'u', $2, $3, now() - make_interval(secs => $4))`,
      [id, host, pool, scheduledAgoSec],
    );
    return id;
  };
  const poolOf = async (id: string) =>
    (await ds.query('SELECT pool FROM volumes WHERE id = $1', [id]))[0]?.pool;

  test("each bare row takes its host's latest pool; hosts with none and unplaced rows stay as they were", async () => {
    const old = await volume('host-a', null, 3000);
    await volume('host-a', 'lvm#old-vg', 2000);
    await volume('host-a', 'lvm#nova-volumes', 1000);
    const otherHost = await volume('host-b', null, 3000);
    await volume('host-c', 'file#volumes', 100);
    const unplaced = await volume(null, null, 0);
    const runner = ds.createQueryRunner();
    try {
      const Backfill = migrations.find((m) => m.name === 'BackfillVolumePool1764000000072');
      if (!Backfill) throw new Error('no pool backfill migration');
      await new Backfill().up(runner);
    } finally {
      await runner.release();
    }
    expect(await poolOf(old)).toBe('lvm#nova-volumes');
    expect(await poolOf(otherHost)).toBeNull();
    expect(await poolOf(unplaced)).toBeNull();
  });
});
