import type { DataSource } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';

export type MessageSortKey =
  | 'created_at'
  | 'id'
  | 'event_id'
  | 'message_level'
  | 'request_id'
  | 'resource_type'
  | 'resource_uuid';

const LISTING: Listing<MessageSortKey> = {
  table: 'messages',
  sortColumns: {
    created_at: 'created_at',
    id: 'id',
    event_id: 'event_id',
    message_level: 'message_level',
    request_id: 'request_id',
    resource_type: 'resource_type',
    resource_uuid: "coalesce(resource_uuid::text, '')",
  },
  notFound: (id) => `Message ${id} could not be found.`,
};

/** The columns a message list may be filtered on (Cinder's resource_filters.json `message`). */
export const MESSAGE_FILTERS = [
  'resource_uuid',
  'resource_type',
  'event_id',
  'request_id',
  'message_level',
] as const;
export type MessageFilter = { readonly [K in (typeof MESSAGE_FILTERS)[number]]?: string };

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

  /** One page of the messages of `projectId` (of every project when undefined) still shown. */
  async list(
    projectId: string | undefined,
    filter: MessageFilter,
    page: Page<MessageSortKey>,
  ): Promise<MessageRecord[]> {
    const scope: Array<readonly [string, unknown?]> = [
      ['created_at > now() - make_interval(secs => ?)', this.ttlSec],
    ];
    if (projectId !== undefined) scope.push(['project_id = ?', projectId]);
    const filters = MESSAGE_FILTERS.filter((column) => filter[column] !== undefined).map(
      (column) =>
        [column === 'resource_uuid' ? 'resource_uuid::text = ?' : `${column} = ?`, filter[column]] as const,
    );
    const rows = await keysetPage(this.ds, LISTING, { scope, filters }, page);
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

  /** Deletes the messages past their guarantee (Cinder's cleanup_expired_messages); answers how many. */
  async reapExpired(): Promise<number> {
    const [, count] = await this.ds.query(
      'DELETE FROM messages WHERE created_at <= now() - make_interval(secs => $1)',
      [this.ttlSec],
    );
    return Number(count);
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
