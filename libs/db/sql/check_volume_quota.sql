-- The quota rule: under the project's lock, the project's limits (the defaults where it has none)
-- against its usage plus the growth; raises SQLSTATE BQ001 with the resource, limit and usage.
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION check_volume_quota(
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
$$;
