import type { MigrationInterface, QueryRunner } from 'typeorm';

const DROP_FUNCTIONS = `
  DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, varchar);
  DROP FUNCTION check_volume_quota(varchar, integer, integer, integer, integer)`;

/**
 * Cinder's quota classes: a project without a limit of its own for a resource gets the `default`
 * class's, and without that the configured default (the caller passes the configured defaults).
 * The check also refuses a single volume larger than `per_volume_gigabytes`. Volumes get Cinder's
 * user metadata (given at create, in the same insert), the bootable flag and the read-only flag
 * Cinder keeps as admin metadata (NULL until first set: Cinder shows it only once set).
 */
export class QuotaClasses1764000000041 implements MigrationInterface {
  name = 'QuotaClasses1764000000041';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE quota_classes (
        class_name varchar(255) NOT NULL,
        resource varchar(300) NOT NULL,
        hard_limit integer NOT NULL CHECK (hard_limit >= -1),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (class_name, resource)
      )`);
    await q.query(`
      ALTER TABLE volumes
        ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN bootable boolean NOT NULL DEFAULT false,
        ADD COLUMN read_only boolean`);
    await q.query(DROP_FUNCTIONS);
    await q.query(`
      CREATE FUNCTION quota_limit(p_project varchar, p_resource varchar, p_default integer) RETURNS integer
      LANGUAGE sql STABLE AS $$
        SELECT coalesce(
          (SELECT hard_limit FROM quotas WHERE project_id = p_project AND resource = p_resource),
          (SELECT hard_limit FROM quota_classes WHERE class_name = 'default' AND resource = p_resource),
          p_default)
      $$`);
    await q.query(`
      CREATE FUNCTION check_volume_quota(
        p_project varchar, p_more_volumes integer, p_more_gigabytes integer,
        p_default_volumes integer, p_default_gigabytes integer, p_size integer, p_default_per_volume integer
      ) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE
        max_volumes integer;
        max_gigabytes integer;
        max_per_volume integer;
        used_volumes integer;
        used_gigabytes integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('quota:' || p_project));
        max_per_volume := quota_limit(p_project, 'per_volume_gigabytes', p_default_per_volume);
        IF max_per_volume >= 0 AND p_size > max_per_volume THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'per_volume_gigabytes', 'limit', max_per_volume, 'in_use', 0)::text;
        END IF;
        max_volumes := quota_limit(p_project, 'volumes', p_default_volumes);
        max_gigabytes := quota_limit(p_project, 'gigabytes', p_default_gigabytes);
        IF max_volumes < 0 AND max_gigabytes < 0 THEN
          RETURN;
        END IF;
        SELECT count(*), coalesce(sum(size), 0) INTO used_volumes, used_gigabytes
          FROM volumes WHERE project_id = p_project AND NOT deleted;
        IF max_volumes >= 0 AND used_volumes + p_more_volumes > max_volumes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'volumes', 'limit', max_volumes, 'in_use', used_volumes)::text;
        END IF;
        IF max_gigabytes >= 0 AND used_gigabytes + p_more_gigabytes > max_gigabytes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'gigabytes', 'limit', max_gigabytes, 'in_use', used_gigabytes)::text;
        END IF;
      END
      $$`);
    await q.query(`
      CREATE FUNCTION create_volume_within_quota(
        p_id uuid, p_size integer, p_zone varchar, p_project varchar, p_user varchar,
        p_name varchar, p_description text, p_type varchar,
        p_default_volumes integer, p_default_gigabytes integer, p_default_per_volume integer,
        p_name_template varchar, p_metadata jsonb
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
                               display_name, display_description, volume_type, metadata)
          VALUES (p_id, new_seq, volume_backend_name(p_name_template, new_seq, p_id), p_size, 'creating',
                  p_zone, p_project, p_user, p_name, p_description, p_type, p_metadata)
          RETURNING *;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, integer, varchar, jsonb);
      DROP FUNCTION check_volume_quota(varchar, integer, integer, integer, integer, integer, integer);
      DROP FUNCTION quota_limit(varchar, varchar, integer);
      DROP TABLE quota_classes;
      ALTER TABLE volumes DROP COLUMN metadata, DROP COLUMN bootable, DROP COLUMN read_only`);
    // check_volume_quota and create_volume_within_quota as 0006 made them
    await q.query(`
      CREATE FUNCTION check_volume_quota(
        p_project varchar, p_more_volumes integer, p_more_gigabytes integer,
        p_default_volumes integer, p_default_gigabytes integer
      ) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE
        max_volumes integer;
        max_gigabytes integer;
        used_volumes integer;
        used_gigabytes integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('quota:' || p_project));
        SELECT coalesce(max(hard_limit) FILTER (WHERE resource = 'volumes'), p_default_volumes),
               coalesce(max(hard_limit) FILTER (WHERE resource = 'gigabytes'), p_default_gigabytes)
          INTO max_volumes, max_gigabytes
          FROM quotas WHERE project_id = p_project;
        IF max_volumes < 0 AND max_gigabytes < 0 THEN
          RETURN;
        END IF;
        SELECT count(*), coalesce(sum(size), 0) INTO used_volumes, used_gigabytes
          FROM volumes WHERE project_id = p_project AND NOT deleted;
        IF max_volumes >= 0 AND used_volumes + p_more_volumes > max_volumes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'volumes', 'limit', max_volumes, 'in_use', used_volumes)::text;
        END IF;
        IF max_gigabytes >= 0 AND used_gigabytes + p_more_gigabytes > max_gigabytes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'gigabytes', 'limit', max_gigabytes, 'in_use', used_gigabytes)::text;
        END IF;
      END
      $$`);
    await q.query(`
      CREATE FUNCTION create_volume_within_quota(
        p_id uuid, p_size integer, p_zone varchar, p_project varchar, p_user varchar,
        p_name varchar, p_description text, p_type varchar,
        p_default_volumes integer, p_default_gigabytes integer, p_name_template varchar
      ) RETURNS SETOF volumes
      LANGUAGE plpgsql AS $$
      DECLARE
        new_seq bigint;
      BEGIN
        PERFORM check_volume_quota(p_project, 1, p_size, p_default_volumes, p_default_gigabytes);
        new_seq := nextval(pg_get_serial_sequence('volumes', 'seq'));
        RETURN QUERY
          INSERT INTO volumes (id, seq, backend_name, size, status, availability_zone, project_id, user_id,
                               display_name, display_description, volume_type)
          VALUES (p_id, new_seq, volume_backend_name(p_name_template, new_seq, p_id), p_size, 'creating',
                  p_zone, p_project, p_user, p_name, p_description, p_type)
          RETURNING *;
      END
      $$`);
  }
}
