import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cinder's per-type quotas: `volumes_<type>`, `gigabytes_<type>` and `snapshots_<type>` for every
 * volume type, counted by one function (quota_usage) and checked by check_volume_quota with the
 * overall limits, for creates, extends, snapshots and transfers alike. Snapshots are checked there
 * too, so create_snapshot_within_quota has no check of its own.
 */
export class PerTypeQuotas1764000000083 implements MigrationInterface {
  name = 'PerTypeQuotas1764000000083';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION quota_usage(p_project varchar) RETURNS TABLE (resource varchar, in_use integer)
      LANGUAGE sql STABLE AS $$
        WITH v AS (
          SELECT volume_type, count(*)::int AS volumes, coalesce(sum(size), 0)::int AS gigabytes
            FROM volumes WHERE project_id = p_project AND NOT deleted GROUP BY volume_type
        ), s AS (
          SELECT o.volume_type, count(*)::int AS snapshots, coalesce(sum(x.volume_size), 0)::int AS gigabytes
            FROM snapshots x JOIN volumes o ON o.id = x.volume_id
           WHERE x.project_id = p_project AND NOT x.deleted GROUP BY o.volume_type
        ), per_type AS (
          SELECT t.name,
                 coalesce((SELECT v.volumes FROM v WHERE v.volume_type = t.id::text), 0) AS volumes,
                 coalesce((SELECT s.snapshots FROM s WHERE s.volume_type = t.id::text), 0) AS snapshots,
                 coalesce((SELECT v.gigabytes FROM v WHERE v.volume_type = t.id::text), 0)
                   + coalesce((SELECT s.gigabytes FROM s WHERE s.volume_type = t.id::text), 0) AS gigabytes
            FROM volume_types t WHERE NOT t.deleted
        )
        SELECT 'volumes'::varchar, coalesce((SELECT sum(volumes) FROM v), 0)::int
        UNION ALL SELECT 'snapshots', coalesce((SELECT sum(snapshots) FROM s), 0)::int
        UNION ALL SELECT 'gigabytes',
                         (coalesce((SELECT sum(gigabytes) FROM v), 0) + coalesce((SELECT sum(gigabytes) FROM s), 0))::int
        UNION ALL SELECT ('volumes_' || name)::varchar, volumes FROM per_type
        UNION ALL SELECT ('snapshots_' || name)::varchar, snapshots FROM per_type
        UNION ALL SELECT ('gigabytes_' || name)::varchar, gigabytes FROM per_type
      $$;`);
    await q.query(
      'DROP FUNCTION check_volume_quota(varchar, integer, integer, integer, integer, integer, integer)',
    );
    await q.query(`
      CREATE OR REPLACE FUNCTION check_volume_quota(
        p_project varchar, p_type varchar, p_more_volumes integer, p_more_snapshots integer, p_more_gigabytes integer,
        p_default_volumes integer, p_default_snapshots integer, p_default_gigabytes integer,
        p_size integer, p_default_per_volume integer
      ) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE
        type_name varchar;
        max_per_volume integer;
        used jsonb;
        in_use integer;
        c record;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('quota:' || p_project));
        max_per_volume := quota_limit(p_project, 'per_volume_gigabytes', p_default_per_volume);
        IF max_per_volume >= 0 AND p_size > max_per_volume THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
            DETAIL = json_build_object('resource', 'per_volume_gigabytes', 'limit', max_per_volume, 'in_use', 0)::text;
        END IF;
        SELECT name INTO type_name FROM volume_types WHERE id::text = p_type AND NOT deleted;
        FOR c IN
          SELECT r.resource, r.more, quota_limit(p_project, r.resource, r.fallback) AS hard_limit
            FROM (VALUES (1, 'volumes', p_more_volumes, p_default_volumes),
                         (2, 'gigabytes', p_more_gigabytes, p_default_gigabytes),
                         (3, 'snapshots', p_more_snapshots, p_default_snapshots),
                         (4, 'volumes_' || type_name, p_more_volumes, -1),
                         (5, 'gigabytes_' || type_name, p_more_gigabytes, -1),
                         (6, 'snapshots_' || type_name, p_more_snapshots, -1)) AS r(n, resource, more, fallback)
           WHERE r.more > 0 AND r.resource IS NOT NULL
           ORDER BY r.n
        LOOP
          CONTINUE WHEN c.hard_limit < 0;
          -- counted once, and only when some limit applies
          IF used IS NULL THEN
            SELECT jsonb_object_agg(u.resource, u.in_use) INTO used FROM quota_usage(p_project) u;
          END IF;
          in_use := coalesce((used ->> c.resource)::integer, 0);
          IF in_use + c.more > c.hard_limit THEN
            RAISE EXCEPTION USING ERRCODE = 'BQ001', MESSAGE = 'quota exceeded',
              DETAIL = json_build_object('resource', c.resource, 'limit', c.hard_limit, 'in_use', in_use)::text;
          END IF;
        END LOOP;
      END
      $$;`);
    await q.query(`
      CREATE OR REPLACE FUNCTION create_volume_within_quota(
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
        PERFORM check_volume_quota(p_project, p_type, 1, 0, p_size, p_default_volumes, -1, p_default_gigabytes,
                                   p_size, p_default_per_volume);
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
      BEGIN
        SELECT * INTO origin FROM volumes WHERE id = p_volume AND NOT deleted FOR UPDATE;
        IF origin.id IS NULL OR NOT (origin.status = ANY(p_statuses)) OR origin.host IS NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'BQ002', MESSAGE = 'volume not snapshottable',
            DETAIL = coalesce(origin.status, 'deleted');
        END IF;
        PERFORM check_volume_quota(p_project, origin.volume_type, 0, 1, origin.size, p_default_volumes,
                                   p_default_snapshots, p_default_gigabytes, 0, -1);
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
      'DROP FUNCTION check_volume_quota(varchar, varchar, integer, integer, integer, integer, integer, integer, integer, integer)',
    );
    await q.query('DROP FUNCTION quota_usage(varchar)');
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
}
