import type { MigrationInterface, QueryRunner } from 'typeorm';

const DROP_FUNCTIONS = `
  DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, varchar);
  DROP FUNCTION check_volume_quota(varchar, integer, integer, integer, integer)`;

/**
 * The project's own limits are read by check_volume_quota itself, in the transaction that holds
 * the project's lock, so a create or an extend no longer reads the quotas table first: one round
 * trip less each, and a limit changed meanwhile is never missed. Callers pass the configured
 * defaults; the refusal's detail names the limit that applied.
 */
export class QuotaLimitsInCheck1764000000006 implements MigrationInterface {
  name = 'QuotaLimitsInCheck1764000000006';

  async up(q: QueryRunner): Promise<void> {
    await q.query(DROP_FUNCTIONS);
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

  async down(q: QueryRunner): Promise<void> {
    await q.query(DROP_FUNCTIONS);
    // check_volume_quota and create_volume_within_quota as 0004 made them
    await q.query(`
      CREATE FUNCTION check_volume_quota(
        p_project varchar, p_more_volumes integer, p_more_gigabytes integer,
        p_max_volumes integer, p_max_gigabytes integer
      ) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE
        used_volumes integer;
        used_gigabytes integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('quota:' || p_project));
        SELECT count(*), coalesce(sum(size), 0) INTO used_volumes, used_gigabytes
          FROM volumes WHERE project_id = p_project AND NOT deleted;
        IF p_max_volumes >= 0 AND used_volumes + p_more_volumes > p_max_volumes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'volumes', 'in_use', used_volumes)::text;
        END IF;
        IF p_max_gigabytes >= 0 AND used_gigabytes + p_more_gigabytes > p_max_gigabytes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'gigabytes', 'in_use', used_gigabytes)::text;
        END IF;
      END
      $$`);
    await q.query(`
      CREATE FUNCTION create_volume_within_quota(
        p_id uuid, p_size integer, p_zone varchar, p_project varchar, p_user varchar,
        p_name varchar, p_description text, p_type varchar,
        p_max_volumes integer, p_max_gigabytes integer, p_name_template varchar
      ) RETURNS SETOF volumes
      LANGUAGE plpgsql AS $$
      DECLARE
        new_seq bigint;
      BEGIN
        PERFORM check_volume_quota(p_project, 1, p_size, p_max_volumes, p_max_gigabytes);
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
