import { randomUUID } from 'node:crypto';
import { createDataSource, MessageRepository } from '@basalt/db';
import type { DataSource } from 'typeorm';
import { createTestDatabase } from '../support/db';

/** Expired user messages are hidden at once and deleted by the periodic reap, the fresh ones kept. */
describe('user messages past message_ttl', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  const DAY = 86_400;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.url, poolSize: 2 });
    await ds.initialize();
  }, 60_000);
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  }, 60_000);

  const insert = (ageSec: number) =>
    ds
      .query(
        `INSERT INTO messages (id, project_id, request_id, resource_type, event_id, message_level, user_message, created_at)
         VALUES ($1, 'p1', 'req-x', 'VOLUME', 'VOLUME_VOLUME_001_003', 'ERROR', 'm', now() - make_interval(secs => $2))
         RETURNING id`,
        [randomUUID(), ageSec],
      )
      .then((rows: Array<{ id: string }>) => rows[0]?.id as string);

  test('an expired message is no longer listed, and the reap deletes it and only it', async () => {
    const messages = new MessageRepository(ds, DAY);
    const old = await insert(2 * DAY);
    const fresh = await insert(60);
    const page = { limit: 10, sort: [{ key: 'created_at' as const, dir: 'desc' as const }] };
    expect((await messages.list('p1', {}, page)).map((m) => m.id)).toEqual([fresh]);
    expect(await messages.find(old, 'p1')).toBeUndefined();
    expect(await messages.reapExpired()).toBe(1);
    const left = await ds.query('SELECT id FROM messages ORDER BY created_at');
    expect(left.map((r: { id: string }) => r.id)).toEqual([fresh]);
    expect(await messages.reapExpired()).toBe(0);
  });
});
