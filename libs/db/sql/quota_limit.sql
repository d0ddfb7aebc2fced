-- A project's limit for a resource: its own, else the default quota class's, else the given default.
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION quota_limit(p_project varchar, p_resource varchar, p_default integer) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT hard_limit FROM quotas WHERE project_id = p_project AND resource = p_resource),
    (SELECT hard_limit FROM quota_classes WHERE class_name = 'default' AND resource = p_resource),
    p_default)
$$;
