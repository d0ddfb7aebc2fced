import type { MigrationInterface, QueryRunner } from 'typeorm';

const VOLUME_STATUSES = (more: string) => `'creating', 'available', 'attaching', 'in-use', 'detaching',
  'deleting', 'error', 'error_deleting', 'extending', 'error_extending', 'maintenance', 'awaiting-transfer',
  ${more}'deleted'`;

const VOLUME_STATUS_CHECK = (statuses: string) => `
  ALTER TABLE volumes DROP CONSTRAINT volumes_status_check,
    ADD CONSTRAINT volumes_status_check CHECK (status IN (${statuses}))`;

const IMAGE_STATUS_CHECK = (statuses: string) => `
  ALTER TABLE images DROP CONSTRAINT images_status_check,
    ADD CONSTRAINT images_status_check CHECK (status IN (${statuses}))`;

/**
 * Glance's image lifecycle (created `queued`, its data uploaded `saving`, then `active`;
 * `deactivated` by an admin; `killed` when an upload failed), its user properties, and Cinder's
 * images on volumes: a volume made from an image names it and keeps its volume_image_metadata;
 * a volume being copied into an image is `uploading`, and names the image it is copied into.
 */
export class ImageService1764000000082 implements MigrationInterface {
  name = 'ImageService1764000000082';

  async up(q: QueryRunner): Promise<void> {
    await q.query(IMAGE_STATUS_CHECK(`'queued', 'saving', 'active', 'deactivated', 'killed', 'deleted'`));
    await q.query(`
      ALTER TABLE images
        ADD COLUMN properties jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN protected boolean NOT NULL DEFAULT false,
        ALTER COLUMN disk_format DROP NOT NULL,
        ALTER COLUMN container_format DROP NOT NULL,
        ALTER COLUMN container_format DROP DEFAULT,
        DROP CONSTRAINT images_visibility_check,
        ADD CONSTRAINT images_visibility_check
          CHECK (visibility IN ('public', 'private', 'shared', 'community'))`);
    await q.query(VOLUME_STATUS_CHECK(VOLUME_STATUSES("'uploading', ")));
    await q.query(
      'ALTER TABLE volumes ADD COLUMN image_id uuid, ADD COLUMN image_metadata jsonb, ADD COLUMN upload_image_id uuid',
    );
    // a failed copy into an image leaves the volume available, with a user message saying why
    await q.query(`
      CREATE OR REPLACE FUNCTION volume_error_message() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        action_id text;
        action text;
        detail_id text;
      BEGIN
        IF OLD.status = 'creating' AND NEW.host IS NULL THEN
          action_id := '001'; action := 'schedule allocate volume';
        ELSIF OLD.status = 'creating' THEN
          action_id := '008'; action := 'create volume from backend';
        ELSIF OLD.status = 'extending' THEN
          action_id := '007'; action := 'extend volume';
        ELSIF OLD.status = 'uploading' THEN
          action_id := '003'; action := 'copy volume to image';
        ELSE
          action_id := '001'; action := 'delete volume';
        END IF;
        detail_id := CASE
          WHEN NEW.status_reason LIKE 'No valid host%' THEN '003'
          WHEN action_id = '008' THEN '012'
          WHEN action_id = '007' THEN '010'
          WHEN action_id = '003' THEN '004'
          ELSE '001' END;
        INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
                              message_level, user_message)
        VALUES (gen_random_uuid(), NEW.project_id,
                -- the request that failed, when the failing statement named it (an older one's id stays behind)
                coalesce(CASE WHEN NEW.status_request_id IS DISTINCT FROM OLD.status_request_id
                              THEN NEW.status_request_id END, 'req-' || gen_random_uuid()),
                'VOLUME', NEW.id,
                'VOLUME_VOLUME_' || action_id || '_' || detail_id, 'ERROR',
                action || ': ' || coalesce(NEW.status_reason, 'An unknown error occurred.'));
        RETURN NULL;
      END
      $$;`);
    await q.query('DROP TRIGGER volume_error_message ON volumes');
    await q.query(`
      CREATE TRIGGER volume_error_message AFTER UPDATE OF status ON volumes
        FOR EACH ROW
        WHEN ((NEW.status IN ('error', 'error_deleting', 'error_extending') AND OLD.status IS DISTINCT FROM NEW.status
               AND OLD.status IN ('creating', 'deleting', 'extending'))
              OR (OLD.status = 'uploading' AND NEW.status <> 'uploading' AND NEW.status_reason IS NOT NULL))
        EXECUTE FUNCTION volume_error_message()`);
    await q.query(
      'DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, integer, varchar, jsonb, uuid, uuid)',
    );
    await q.query(`
      CREATE FUNCTION create_volume_within_quota(
        p_id uuid, p_size integer, p_zone varchar, p_project varchar, p_user varchar,
        p_name varchar, p_description text, p_type varchar,
        p_default_volumes integer, p_default_gigabytes integer, p_default_per_volume integer,
        p_name_template varchar, p_metadata jsonb, p_snapshot_id uuid, p_source_volid uuid,
        p_image_id uuid, p_image_metadata jsonb, p_bootable boolean
      ) RETURNS SETOF volumes
      LANGUAGE plpgsql AS $$
      DECLARE
        new_seq bigint;
      BEGIN
        PERFORM check_volume_quota(p_project, 1, p_size, p_default_volumes, p_default_gigabytes, p_size,
                                   p_default_per_volume);
        new_seq := nextval(pg_get_serial_sequence('volumes', 'seq'));
        RETURN QUERY
          INSERT INTO volumes (id, seq, backend_name, size, status, availability_zone, project_id, user_id,
                               display_name, display_description, volume_type, metadata, snapshot_id,
                               source_volid, image_id, image_metadata, bootable)
          VALUES (p_id, new_seq, volume_backend_name(p_name_template, new_seq, p_id), p_size, 'creating',
                  p_zone, p_project, p_user, p_name, p_description, p_type, p_metadata, p_snapshot_id,
                  p_source_volid, p_image_id, p_image_metadata, coalesce(p_bootable, false))
          RETURNING *;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER volume_error_message ON volumes');
    await q.query(`
      CREATE TRIGGER volume_error_message AFTER UPDATE OF status ON volumes
        FOR EACH ROW
        WHEN (NEW.status IN ('error', 'error_deleting', 'error_extending') AND OLD.status IS DISTINCT FROM NEW.status
              AND OLD.status IN ('creating', 'deleting', 'extending'))
        EXECUTE FUNCTION volume_error_message()`);
    await q.query(`
      CREATE OR REPLACE FUNCTION volume_error_message() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        action_id text;
        action text;
        detail_id text;
      BEGIN
        IF OLD.status = 'creating' AND NEW.host IS NULL THEN
          action_id := '001'; action := 'schedule allocate volume';
        ELSIF OLD.status = 'creating' THEN
          action_id := '008'; action := 'create volume from backend';
        ELSIF OLD.status = 'extending' THEN
          action_id := '007'; action := 'extend volume';
        ELSE
          action_id := '001'; action := 'delete volume';
        END IF;
        detail_id := CASE
          WHEN NEW.status_reason LIKE 'No valid host%' THEN '003'
          WHEN action_id = '008' THEN '012'
          WHEN action_id = '007' THEN '010'
          ELSE '001' END;
        INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
                              message_level, user_message)
        VALUES (gen_random_uuid(), NEW.project_id,
                -- the request that failed, when the failing statement named it (an older one's id stays behind)
                coalesce(CASE WHEN NEW.status_request_id IS DISTINCT FROM OLD.status_request_id
                              THEN NEW.status_request_id END, 'req-' || gen_random_uuid()),
                'VOLUME', NEW.id,
                'VOLUME_VOLUME_' || action_id || '_' || detail_id, 'ERROR',
                action || ': ' || coalesce(NEW.status_reason, 'An unknown error occurred.'));
        RETURN NULL;
      END
      $$;`);
    await q.query(
      'DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, integer, varchar, jsonb, uuid, uuid, uuid, jsonb, boolean)',
    );
    await q.query(`
      CREATE FUNCTION create_volume_within_quota(
        p_id uuid, p_size integer, p_zone varchar, p_project varchar, p_user varchar,
        p_name varchar, p_description text, p_type varchar,
        p_default_volumes integer, p_default_gigabytes integer, p_default_per_volume integer,
        p_name_template varchar, p_metadata jsonb, p_snapshot_id uuid, p_source_volid uuid
      ) RETURNS SETOF volumes
      LANGUAGE plpgsql AS $$
      DECLARE
        new_seq bigint;
      BEGIN
        PERFORM check_volume_quota(p_project, 1, p_size, p_default_volumes, p_default_gigabytes, p_size,
                                   p_default_per_volume);
        new_seq := nextval(pg_get_serial_sequence('volumes', 'seq'));
        RETURN QUERY
          INSERT INTO volumes (id, seq, backend_name, size, status, availability_zone, project_id, user_id,
                               display_name, display_description, volume_type, metadata, snapshot_id, source_volid)
          VALUES (p_id, new_seq, volume_backend_name(p_name_template, new_seq, p_id), p_size, 'creating',
                  p_zone, p_project, p_user, p_name, p_description, p_type, p_metadata, p_snapshot_id, p_source_volid)
          RETURNING *;
      END
      $$`);
    await q.query("UPDATE volumes SET status = 'available' WHERE status = 'uploading'");
    await q.query(
      'ALTER TABLE volumes DROP COLUMN image_id, DROP COLUMN image_metadata, DROP COLUMN upload_image_id',
    );
    await q.query(VOLUME_STATUS_CHECK(VOLUME_STATUSES('')));
    await q.query(`
      UPDATE images SET status = 'deleted', deleted = true
       WHERE status NOT IN ('queued', 'active', 'deleted') OR disk_format IS NULL OR container_format IS NULL`);
    await q.query("UPDATE images SET visibility = 'private' WHERE visibility NOT IN ('public', 'private')");
    await q.query(`
      ALTER TABLE images DROP COLUMN properties, DROP COLUMN protected,
        ALTER COLUMN disk_format SET NOT NULL,
        ALTER COLUMN container_format SET DEFAULT 'bare',
        ALTER COLUMN container_format SET NOT NULL,
        DROP CONSTRAINT images_visibility_check,
        ADD CONSTRAINT images_visibility_check CHECK (visibility IN ('public', 'private'))`);
    await q.query(IMAGE_STATUS_CHECK(`'queued', 'active', 'deleted'`));
  }
}
