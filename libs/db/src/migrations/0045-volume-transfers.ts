import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATUS_CHECK = (statuses: string) => `
  ALTER TABLE volumes DROP CONSTRAINT volumes_status_check,
    ADD CONSTRAINT volumes_status_check CHECK (status IN (${statuses}))`;

/**
 * Cinder's volume transfers: a volume offered to another project (`awaiting-transfer`) under a
 * secret shown once; only its salted hash is kept. Accepted and cancelled transfers stay for
 * history (3.57), marked deleted.
 */
export class VolumeTransfers1764000000045 implements MigrationInterface {
  name = 'VolumeTransfers1764000000045';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE transfers (
        id uuid PRIMARY KEY,
        volume_id uuid NOT NULL REFERENCES volumes (id),
        display_name varchar(255),
        salt varchar(255) NOT NULL,
        crypt_hash varchar(255) NOT NULL,
        source_project_id varchar(255) NOT NULL,
        destination_project_id varchar(255),
        accepted boolean NOT NULL DEFAULT false,
        no_snapshots boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    await q.query('CREATE UNIQUE INDEX transfers_volume_live ON transfers (volume_id) WHERE NOT deleted');
    await q.query(
      STATUS_CHECK(`'creating', 'available', 'attaching', 'in-use', 'detaching', 'deleting', 'error',
        'error_deleting', 'extending', 'error_extending', 'maintenance', 'awaiting-transfer', 'deleted'`),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("UPDATE volumes SET status = 'available' WHERE status = 'awaiting-transfer'");
    await q.query(
      STATUS_CHECK(`'creating', 'available', 'attaching', 'in-use', 'detaching', 'deleting', 'error',
        'error_deleting', 'extending', 'error_extending', 'maintenance', 'deleted'`),
    );
    await q.query('DROP TABLE transfers');
  }
}
