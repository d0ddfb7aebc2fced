import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What nova's compute API 2.49 to 2.63 keep: a server's tags (given at create from 2.52) and
 * trusted image certificate ids (2.63; null when none were given), the tag
 * of a volume attachment (2.49), when an instance action last changed (its `updated_at`, which
 * os-instance-actions shows and filters on from 2.58; nova moves it with every event) and the
 * compute host that recorded an event (2.62).
 */
export class ComputeTagsAndActionUpdates1764000000086 implements MigrationInterface {
  name = 'ComputeTagsAndActionUpdates1764000000086';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE instances ADD COLUMN tags text[] NOT NULL DEFAULT '{}'`);
    await q.query('ALTER TABLE instances ADD COLUMN trusted_certs text[]');
    await q.query('ALTER TABLE block_device_mappings ADD COLUMN tag varchar(60)');
    await q.query('ALTER TABLE instance_actions ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()');
    // the last thing that happened to each action recorded so far
    await q.query(`
      UPDATE instance_actions a SET updated_at = greatest(a.start_time, a.finish_time,
        (SELECT max(greatest(e.start_time, e.finish_time)) FROM instance_actions_events e WHERE e.action_id = a.id))`);
    await q.query('CREATE INDEX instance_actions_updated ON instance_actions (instance_uuid, updated_at)');
    await q.query('ALTER TABLE instance_actions_events ADD COLUMN host varchar(255)');
    // the events so far were recorded by the host the API cast to, the instance's (servers here
    // never move)
    await q.query(`
      UPDATE instance_actions_events e SET host = i.host
        FROM instance_actions a JOIN instances i ON i.id = a.instance_uuid
       WHERE e.action_id = a.id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE instance_actions_events DROP COLUMN host');
    await q.query('ALTER TABLE instance_actions DROP COLUMN updated_at');
    await q.query('ALTER TABLE block_device_mappings DROP COLUMN tag');
    await q.query('ALTER TABLE instances DROP COLUMN trusted_certs');
    await q.query('ALTER TABLE instances DROP COLUMN tags');
  }
}
