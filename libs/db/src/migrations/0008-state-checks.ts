import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The state columns accept only the states of their state tables, and `deleted` is a state: a
 * row has `deleted` set exactly when its status is `deleted`. Connections closed before this
 * migration take the status too.
 */
export class StateChecks1764000000008 implements MigrationInterface {
  name = 'StateChecks1764000000008';

  async up(q: QueryRunner): Promise<void> {
    await q.query("UPDATE volumes SET status = 'deleted' WHERE deleted AND status <> 'deleted'");
    await q.query(`
      ALTER TABLE volumes
        ADD CONSTRAINT volumes_status_check CHECK (status IN (
          'creating', 'available', 'attaching', 'in-use', 'detaching', 'deleting', 'error',
          'error_deleting', 'extending', 'error_extending', 'deleted')),
        ADD CONSTRAINT volumes_attach_status_check CHECK (attach_status IN (
          'detached', 'attaching', 'attached', 'detaching')),
        ADD CONSTRAINT volumes_deleted_status CHECK (deleted = (status = 'deleted'))`);
    await q.query("UPDATE volume_attachments SET attach_status = 'deleted' WHERE deleted");
    await q.query(`
      ALTER TABLE volume_attachments
        ADD CONSTRAINT volume_attachments_attach_status_check CHECK (attach_status IN (
          'connected', 'attached', 'deleted')),
        ADD CONSTRAINT volume_attachments_deleted_status CHECK (deleted = (attach_status = 'deleted'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE volume_attachments
        DROP CONSTRAINT volume_attachments_deleted_status,
        DROP CONSTRAINT volume_attachments_attach_status_check`);
    await q.query(`
      ALTER TABLE volumes
        DROP CONSTRAINT volumes_deleted_status,
        DROP CONSTRAINT volumes_attach_status_check,
        DROP CONSTRAINT volumes_status_check`);
  }
}
