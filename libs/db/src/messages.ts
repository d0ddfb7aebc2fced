import type { DataSource } from 'typeorm';

/** A user message (Cinder's messages API): what failed on one of the project's resources, and why. */
export interface MessageRecord {
  readonly id: string;
  readonly projectId: string;
  readonly requestId: string;
  readonly resourceType: string;
  readonly resourceUuid: string | null;
  readonly eventId: string;
  readonly messageLevel: string;
  readonly userMessage: string;
  readonly createdAt: Date;
}

/**
 * The messages table: rows are written by the database itself when a volume fails (see the
 * volume_error_message trigger); callers read and delete them. A message older than `ttlSec` is
 * past its guarantee and no longer shown.
 */
export class MessageRepository {
  constructor(
    private readonly ds: DataSource,
    readonly ttlSec: number,
  ) {}

  /** The messages of `projectId` (of every project when undefined), newest first. */
  async list(projectId: string | undefined, limit: number): Promise<MessageRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM messages WHERE ($1::varchar IS NULL OR project_id = $1)
          AND created_at > now() - make_interval(secs => $2)
        ORDER BY created_at DESC, id LIMIT $3`,
      [projectId ?? null, this.ttlSec, limit],
    );
    return rows.map(toMessage);
  }

  async find(id: string, projectId: string | undefined): Promise<MessageRecord | undefined> {
    const rows = await this.ds.query(
      `SELECT * FROM messages WHERE id = $1 AND ($2::varchar IS NULL OR project_id = $2)
          AND created_at > now() - make_interval(secs => $3)`,
      [id, projectId ?? null, this.ttlSec],
    );
    return rows[0] ? toMessage(rows[0]) : undefined;
  }

  /** Whether there was such a message to delete. */
  async delete(id: string, projectId: string | undefined): Promise<boolean> {
    const [, count] = await this.ds.query(
      'DELETE FROM messages WHERE id = $1 AND ($2::varchar IS NULL OR project_id = $2)',
      [id, projectId ?? null],
    );
    return Number(count) > 0;
  }
}

function toMessage(r: Record<string, unknown>): MessageRecord {
  return {
    id: String(r.id),
    projectId: String(r.project_id),
    requestId: String(r.request_id),
    resourceType: String(r.resource_type),
    resourceUuid: (r.resource_uuid as string | null) ?? null,
    eventId: String(r.event_id),
    messageLevel: String(r.message_level),
    userMessage: String(r.user_message),
    createdAt: new Date(String(r.created_at)),
  };
}
