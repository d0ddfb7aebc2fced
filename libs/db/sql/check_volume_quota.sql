-- Refuses, with SQLSTATE BQ001 and the resource in the detail, growth the project's quota does not take.
-- Gigabytes count the live volumes' sizes and the live snapshots' (Cinder's default).
-- The function as the database has it now: a change is a new migration carrying this text.
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
$$;
