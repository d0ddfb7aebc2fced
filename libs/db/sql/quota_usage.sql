-- What a project uses of each resource the quota counts: volumes, snapshots and gigabytes (the
-- volumes' sizes and the snapshots'), and the same per volume type as `<resource>_<type name>`
-- for every live type (a snapshot counts under its volume's type).
-- The function as the database has it now: a change is a new migration carrying this text.
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
$$;
