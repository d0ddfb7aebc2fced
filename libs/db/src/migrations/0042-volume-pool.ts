import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The backend and pool a volume was placed in (`backend#pool`, from the host's capability report),
 * so the API shows Cinder's `host@backend#pool` as the scheduler's pools name it.
 */
export class VolumePool1764000000042 implements MigrationInterface {
  name = 'VolumePool1764000000042';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE volumes ADD COLUMN pool varchar(255)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE volumes DROP COLUMN pool');
  }
}
