import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A user message names the request that failed (Cinder's message.request_id is the context's):
 * the statement that moves a volume to an error state records the failing request's id beside
 * the reason, and the trigger copies it into the message.
 */
export class MessageRequestId1764000000070 implements MigrationInterface {
  name = 'MessageRequestId1764000000070';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE volumes ADD COLUMN status_request_id varchar(255)');
    await q.query(`
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
        ELSE
          action_id := '001'; action := 'delete volume';
        END IF;
        detail_id := CASE
          WHEN NEW.status_reason LIKE 'No valid host%' THEN '003'
          WHEN action_id = '008' THEN '012'
          WHEN action_id = '007' THEN '010'
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
      $$;`);
  }

  async down(q: QueryRunner): Promise<void> {
    // volume_error_message as 0040 made it
    await q.query(`
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
        ELSE
          action_id := '001'; action := 'delete volume';
        END IF;
        detail_id := CASE
          WHEN NEW.status_reason LIKE 'No valid host%' THEN '003'
          WHEN action_id = '008' THEN '012'
          WHEN action_id = '007' THEN '010'
          ELSE '001' END;
        INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
                              message_level, user_message)
        VALUES (gen_random_uuid(), NEW.project_id, 'req-' || gen_random_uuid(), 'VOLUME', NEW.id,
                'VOLUME_VOLUME_' || action_id || '_' || detail_id, 'ERROR',
                action || ': ' || coalesce(NEW.status_reason, 'An unknown error occurred.'));
        RETURN NULL;
      END
      $$;`);
    await q.query('ALTER TABLE volumes DROP COLUMN status_request_id');
  }
}
