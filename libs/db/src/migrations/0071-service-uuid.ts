import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every service gets Cinder's `uuid`: a volume's `service_uuid` (3.48) is the uuid of the volume
 * service hosting it, so clients can tell volumes of one backend from another's.
 */
export class ServiceUuid1764000000071 implements MigrationInterface {
  name = 'ServiceUuid1764000000071';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE services ADD COLUMN uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid()');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE services DROP COLUMN uuid');
  }
}
