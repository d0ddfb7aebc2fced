import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cinder's snapshots: a point-in-time copy of a volume, on the volume's host, named
 * `snapshot-<id>`, with its own status, metadata and the origin's size (what the gigabytes quota
 * counts). Volumes record the snapshot or the volume they were made from. The quota check
 * counts snapshots' gigabytes, and one function inserts a snapshot within the quota.
 */
export class Snapshots1764000000073 implements MigrationInterface {
  name = 'Snapshots1764000000073';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE snapshots (
        id uuid PRIMARY KEY,
        volume_id uuid NOT NULL REFERENCES volumes (id),
        backend_name varchar(255) NOT NULL,
        volume_size integer NOT NULL,
        status varchar(255) NOT NULL CONSTRAINT snapshots_status_check
          CHECK (status IN ('creating', 'available', 'deleting', 'error', 'error_deleting', 'deleted')),
        status_reason text,
        progress varchar(255) NOT NULL DEFAULT '0%',
        host varchar(255) NOT NULL,
        project_id varchar(255) NOT NULL,
        user_id varchar(255) NOT NULL,
        display_name varchar(255),
        display_description varchar(255),
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false,
        CONSTRAINT snapshots_deleted_status CHECK (deleted = (status = 'deleted'))
      )`);
    await q.query('CREATE INDEX snapshots_volume_live ON snapshots (volume_id) WHERE NOT deleted');
    await q.query('CREATE INDEX snapshots_project_live ON snapshots (project_id) WHERE NOT deleted');
    await q.query('CREATE INDEX snapshots_host_live ON snapshots (host, status) WHERE NOT deleted');
    await q.query('ALTER TABLE volumes ADD COLUMN snapshot_id uuid, ADD COLUMN source_volid uuid');
    await q.query(
      'DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, integer, varchar, jsonb)',
    );
    await q.query(`
      CREATE OR REPLACE FUNCTION check_volume_quota(
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
        used_gigabytes := used_gigabytes + (SELECT coalesce(sum(volume_size), 0)
          FROM snapshots WHERE project_id = p_project AND NOT deleted);
        IF max_volumes >= 0 AND used_volumes + p_more_volumes > max_volumes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'volumes', 'limit', max_volumes, 'in_use', used_volumes)::text;
        END IF;
        IF max_gigabytes >= 0 AND used_gigabytes + p_more_gigabytes > max_gigabytes THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'gigabytes', 'limit', max_gigabytes, 'in_use', used_gigabytes)::text;
        END IF;
      END
      $$;`);
    await q.query(`
      CREATE OR REPLACE FUNCTION create_volume_within_quota(
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
      $$;`);
    await q.query(`
      CREATE OR REPLACE FUNCTION create_snapshot_within_quota(
        p_id uuid, p_volume uuid, p_project varchar, p_user varchar, p_name varchar, p_description text,
        p_metadata jsonb, p_statuses varchar[],
        p_default_volumes integer, p_default_snapshots integer, p_default_gigabytes integer
      ) RETURNS SETOF snapshots
      LANGUAGE plpgsql AS $$
      DECLARE
        origin volumes%ROWTYPE;
        max_snapshots integer;
        used_snapshots integer;
      BEGIN
        SELECT * INTO origin FROM volumes WHERE id = p_volume AND NOT deleted FOR UPDATE;
        IF origin.id IS NULL OR NOT (origin.status = ANY(p_statuses)) OR origin.host IS NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ002', MESSAGE = 'volume not snapshottable',
            DETAIL = coalesce(origin.status, 'deleted');
        END IF;
        PERFORM check_volume_quota(p_project, 0, origin.size, p_default_volumes, p_default_gigabytes, 0, -1);
        max_snapshots := quota_limit(p_project, 'snapshots', p_default_snapshots);
        IF max_snapshots >= 0 THEN
          SELECT count(*) INTO used_snapshots FROM snapshots WHERE project_id = p_project AND NOT deleted;
          IF used_snapshots + 1 > max_snapshots THEN
            RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
              DETAIL = json_build_object('resource', 'snapshots', 'limit', max_snapshots, 'in_use', used_snapshots)::text;
          END IF;
        END IF;
        RETURN QUERY
          INSERT INTO snapshots (id, volume_id, backend_name, volume_size, status, host, project_id, user_id,
                                 display_name, display_description, metadata)
          VALUES (p_id, p_volume, 'snapshot-' || p_id::text, origin.size, 'creating', origin.host, p_project,
                  p_user, p_name, p_description, p_metadata)
          RETURNING *;
      END
      $$;`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      'DROP FUNCTION create_snapshot_within_quota(uuid, uuid, varchar, varchar, varchar, text, jsonb, varchar[], integer, integer, integer)',
    );
    await q.query(
      'DROP FUNCTION create_volume_within_quota(uuid, integer, varchar, varchar, varchar, varchar, text, varchar, integer, integer, integer, varchar, jsonb, uuid, uuid)',
    );
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
    await q.query(`
      CREATE OR REPLACE FUNCTION check_volume_quota(
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
    await q.query('ALTER TABLE volumes DROP COLUMN snapshot_id, DROP COLUMN source_volid');
    await q.query('DROP TABLE snapshots');
  }
}
