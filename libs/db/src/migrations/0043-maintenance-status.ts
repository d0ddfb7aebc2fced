import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATUS_CHECK = (statuses: string) => `
  ALTER TABLE volumes DROP CONSTRAINT volumes_status_check,
    ADD CONSTRAINT volumes_status_check CHECK (status IN (${statuses}))`;

/** `maintenance`, Cinder's operator hold, set only by os-reset_status. */
export class MaintenanceStatus1764000000043 implements MigrationInterface {
  name = 'MaintenanceStatus1764000000043';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      STATUS_CHECK(`'creating', 'available', 'attaching', 'in-use', 'detaching', 'deleting', 'error',
        'error_deleting', 'extending', 'error_extending', 'maintenance', 'deleted'`),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("UPDATE volumes SET status = 'error' WHERE status = 'maintenance'");
    await q.query(
      STATUS_CHECK(`'creating', 'available', 'attaching', 'in-use', 'detaching', 'deleting', 'error',
        'error_deleting', 'extending', 'error_extending', 'deleted'`),
    );
  }
}
