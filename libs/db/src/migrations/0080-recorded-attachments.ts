import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cinder's os-attach records an attachment that has no connection behind it (no initiator, no
 * address): the caller says which instance uses the volume, and where.
 */
export class RecordedAttachments1764000000080 implements MigrationInterface {
  name = 'RecordedAttachments1764000000080';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE volume_attachments
        ALTER COLUMN initiator DROP NOT NULL,
        ALTER COLUMN ip DROP NOT NULL,
        ADD CONSTRAINT volume_attachments_connection CHECK ((initiator IS NULL) = (ip IS NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DELETE FROM volume_attachments WHERE initiator IS NULL');
    await q.query(`
      ALTER TABLE volume_attachments
        DROP CONSTRAINT volume_attachments_connection,
        ALTER COLUMN initiator SET NOT NULL,
        ALTER COLUMN ip SET NOT NULL`);
  }
}
