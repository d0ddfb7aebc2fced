-- A `creating` snapshot of a live volume in one of `p_statuses`, on the volume's host, inserted only
-- if the quota takes one more snapshot and the volume's size in gigabytes (overall and for the
-- volume's type). The volume's row is locked first, so a delete that begins meanwhile either sees
-- the snapshot or is seen by it.
-- SQLSTATE BQ002 (the volume's status in the detail): the volume is in no status a snapshot takes.
-- The function as the database has it now: a change is a new migration carrying this text.
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
$$;
