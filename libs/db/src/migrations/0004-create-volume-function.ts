import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The quota rule in one place, and a volume row inserted in one round trip instead of seven.
 * `check_volume_quota` takes the per-project lock (held to the end of the transaction) and
 * raises SQLSTATE BQ001, with the resource and the usage in its detail, when the growth does not
 * fit; creates and extends both go through it. `create_volume_within_quota` checks, then inserts
 * the row named from `volume_name_template`.
 */
export class CreateVolumeFunction1764000000004 implements MigrationInterface {
  name = 'CreateVolumeFunction1764000000004';

  async up(q: QueryRunner): Promise<void> {
    // nova's template: %s is the id; %x and %d the sequence number, zero-padded to a width starting with 0
    await q.query(`
      CREATE FUNCTION volume_backend_name(p_template varchar, p_seq bigint, p_id uuid) RETURNS varchar
      LANGUAGE plpgsql IMMUTABLE AS $$
      DECLARE
        done varchar := '';
        rest varchar := p_template;
        m text[];
        piece varchar;
      BEGIN
        LOOP
          m := regexp_match(rest, '^(.*?)%(0?[0-9]*)([xds])(.*)$');
          EXIT WHEN m IS NULL;
          piece := CASE m[3] WHEN 's' THEN p_id::text WHEN 'x' THEN to_hex(p_seq) ELSE p_seq::text END;
          IF m[2] LIKE '0%' AND length(piece) < m[2]::integer THEN
            piece := lpad(piece, m[2]::integer, '0');
          END IF;
          done := done || m[1] || piece;
          rest := m[4];
        END LOOP;
        RETURN done || rest;
      END
      $$`);
    // the caller passes the project's limits
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

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      'DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, varchar)',
    );
    await q.query('DROP FUNCTION check_volume_quota(varchar, integer, integer, integer, integer)');
    await q.query('DROP FUNCTION volume_backend_name(varchar, bigint, uuid)');
  }
}
