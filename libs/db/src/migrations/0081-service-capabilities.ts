import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each service keeps the capabilities (or resources) it last reported and when: a scheduler that
 * starts places from them at once instead of waiting for every host to report again.
 */
export class ServiceCapabilities1764000000081 implements MigrationInterface {
  name = 'ServiceCapabilities1764000000081';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      'ALTER TABLE services ADD COLUMN capabilities jsonb, ADD COLUMN capabilities_at timestamptz',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE services DROP COLUMN capabilities, DROP COLUMN capabilities_at');
  }
}
