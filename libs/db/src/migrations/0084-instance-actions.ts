import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Nova's instance actions: what was asked of an instance (one row per request, keyed by its
 * request id) and the events the compute host recorded while doing it, each with its start,
 * finish and result.
 */
export class InstanceActions1764000000084 implements MigrationInterface {
  name = 'InstanceActions1764000000084';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE instance_actions (
        id bigserial PRIMARY KEY,
        instance_uuid uuid NOT NULL REFERENCES instances (id),
        action varchar(255) NOT NULL,
        request_id varchar(255) NOT NULL,
        user_id varchar(255) NOT NULL,
        project_id varchar(255) NOT NULL,
        message varchar(255),
        start_time timestamptz NOT NULL DEFAULT now(),
        finish_time timestamptz,
        UNIQUE (instance_uuid, request_id)
      )`);
    await q.query(`
      CREATE TABLE instance_actions_events (
        id bigserial PRIMARY KEY,
        action_id bigint NOT NULL REFERENCES instance_actions (id),
        event varchar(255) NOT NULL,
        result varchar(255),
        traceback text,
        start_time timestamptz NOT NULL DEFAULT now(),
        finish_time timestamptz,
        UNIQUE (action_id, event)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE instance_actions_events');
    await q.query('DROP TABLE instance_actions');
  }
}
