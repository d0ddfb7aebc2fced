-- The trigger function that leaves a user message when a volume fails (Cinder's messages).
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION volume_error_message() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  action_id text;
  action text;
  detail_id text;
BEGIN
  IF OLD.status = 'creating' AND NEW.host IS NULL THEN
    action_id := '001'; action := 'schedule allocate volume';
  ELSIF OLD.status = 'creating' THEN
    action_id := '008'; action := 'create volume from backend';
  ELSIF OLD.status = 'extending' THEN
    action_id := '007'; action := 'extend volume';
  ELSIF OLD.status = 'uploading' THEN
    action_id := '003'; action := 'copy volume to image';
  ELSE
    action_id := '001'; action := 'delete volume';
  END IF;
  detail_id := CASE
    WHEN NEW.status_reason LIKE 'No valid host%' THEN '003'
    WHEN action_id = '008' THEN '012'
    WHEN action_id = '007' THEN '010'
    WHEN action_id = '003' THEN '004'
    ELSE '001' END;
  INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
                        message_level, user_message)
  VALUES (gen_random_uuid(), NEW.project_id,
          -- the request that failed, when the failing statement named it (an older one's id stays behind)
          coalesce(CASE WHEN NEW.status_request_id IS DISTINCT FROM OLD.status_request_id
                        THEN NEW.status_request_id END, 'req-' || gen_random_uuid()),
          'VOLUME', NEW.id,
          'VOLUME_VOLUME_' || action_id || '_' || detail_id, 'ERROR',
          action || ': ' || coalesce(NEW.status_reason, 'An unknown error occurred.'));
  RETURN NULL;
END
$$;
