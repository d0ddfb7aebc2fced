-- A `creating` volume row, named from the template, inserted only if the quota takes it (overall and
-- for its type); a volume made from a snapshot, another volume or an image names its source, and
-- carries its volume_image_metadata and bootable flag.
-- The function as the database has it now: a change is a new migration carrying this text.
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
$$;
