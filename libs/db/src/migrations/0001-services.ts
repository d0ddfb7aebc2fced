import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateServices1764000000001 implements MigrationInterface {
  name = 'CreateServices1764000000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE services (
        id serial PRIMARY KEY,
        host varchar(255) NOT NULL,
        "binary" varchar(255) NOT NULL,
        topic varchar(255) NOT NULL,
        availability_zone varchar(255) NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        disabled_reason varchar(255),
        report_count integer NOT NULL DEFAULT 0,
        last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT services_host_binary UNIQUE (host, "binary")
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE services');
  }
}
