-- The lowest free iSCSI target number of a host for a volume (the same one again for the same
-- volume), under a per-host advisory lock so concurrent creates never share one.
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION allocate_iscsi_target(p_host varchar, p_volume uuid, p_max integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  found integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('iscsi_targets:' || p_host));
  SELECT target_num INTO found FROM iscsi_targets WHERE volume_id = p_volume;
  IF found IS NOT NULL THEN
    RETURN found;
  END IF;
  INSERT INTO iscsi_targets (host, target_num, volume_id)
    SELECT p_host, c.n, p_volume FROM (SELECT 1 AS n UNION ALL SELECT target_num + 1 FROM iscsi_targets WHERE host = p_host) AS c
     WHERE c.n <= p_max
       AND NOT EXISTS (SELECT 1 FROM iscsi_targets t WHERE t.host = p_host AND t.target_num = c.n)
     ORDER BY c.n LIMIT 1
    RETURNING target_num INTO found;
  RETURN found;
END
$$;
