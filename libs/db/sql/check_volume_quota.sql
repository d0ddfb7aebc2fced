-- Refuses, with SQLSTATE BQ001 and the resource in the detail, growth the project's quota does not take:
-- the volumes, snapshots and gigabytes it adds, counted overall and under the volume type `p_type`
-- (its `<resource>_<type name>` limits, unlimited unless set), as quota_usage counts them. With
-- `p_type_only` only the type's limits are checked (Cinder's reserve_vol_type_only): a retype moves
-- usage between types, the project's overall usage stays.
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION check_volume_quota(
  p_project varchar, p_type varchar, p_more_volumes integer, p_more_snapshots integer, p_more_gigabytes integer,
  p_default_volumes integer, p_default_snapshots integer, p_default_gigabytes integer,
  p_size integer, p_default_per_volume integer, p_type_only boolean DEFAULT false
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
     WHERE r.more > 0 AND r.resource IS NOT NULL AND (r.n > 3 OR NOT p_type_only)
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
$$;
