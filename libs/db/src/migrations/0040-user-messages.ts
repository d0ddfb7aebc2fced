import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cinder's user messages: a volume that goes to an error state leaves one saying what was being
 * done and why it failed. A trigger writes it, so every path to an error state (scheduler, worker,
 * API) leaves exactly one, in the statement that changed the status. Event ids follow Cinder's
 * message_field: `VOLUME_<resource>_<action>_<detail>`.
 */
export class UserMessages1764000000040 implements MigrationInterface {
  name = 'UserMessages1764000000040';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE messages (
        id uuid PRIMARY KEY,
        project_id varchar(255) NOT NULL,
        request_id varchar(255) NOT NULL,
        resource_type varchar(255) NOT NULL,
        resource_uuid uuid,
        event_id varchar(255) NOT NULL,
        message_level varchar(255) NOT NULL,
        user_message text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query('CREATE INDEX messages_project ON messages (project_id, created_at)');
    await q.query(`
      CREATE FUNCTION volume_error_message() RETURNS trigger
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
      $$`);
    await q.query(`
      CREATE TRIGGER volume_error_message AFTER UPDATE OF status ON volumes
        FOR EACH ROW
        WHEN (NEW.status IN ('error', 'error_deleting', 'error_extending') AND OLD.status IS DISTINCT FROM NEW.status
              AND OLD.status IN ('creating', 'deleting', 'extending'))
        EXECUTE FUNCTION volume_error_message()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER volume_error_message ON volumes');
    await q.query('DROP FUNCTION volume_error_message()');
    await q.query('DROP TABLE messages');
  }
}
