import { InvalidInputError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { date, type Row, updateReturning } from './sql';

/** Nova's names of the actions Basalt records. */
export const INSTANCE_ACTIONS = { extendVolume: 'extend_volume' } as const;

export interface InstanceActionEvent {
  readonly event: string;
  readonly startTime: Date;
  readonly finishTime: Date | null;
  /** `Success` or `Error` once finished (Nova's words). */
  readonly result: string | null;
  readonly traceback: string | null;
  /** The compute host that recorded it (nova's nullable host). */
  readonly host: string | null;
}

export interface InstanceAction {
  readonly action: string;
  readonly instanceUuid: string;
  readonly requestId: string;
  readonly userId: string;
  readonly projectId: string;
  readonly message: string | null;
  readonly startTime: Date;
  /** When it or one of its events last started or finished (nova's updated_at). */
  readonly updatedAt: Date;
}

/** Which of an instance's actions a list wants (nova's actions_get, 2.58). */
export interface InstanceActionPage {
  readonly limit?: number;
  /** The request id of the action the page starts after. */
  readonly marker?: string;
  /** Only actions updated at or after this. */
  readonly changesSince?: Date;
  /** Only actions updated at or before this (2.66). */
  readonly changesBefore?: Date;
}

export interface NewInstanceAction {
  readonly instanceUuid: string;
  readonly action: string;
  readonly requestId: string;
  readonly userId: string;
  readonly projectId: string;
}

/**
 * Instance actions and their events (nova's InstanceAction and InstanceActionEvent). An action is
 * one request's: recording it again for the same request changes nothing, and so does an event
 * started or finished twice, as a redelivered message does.
 */
export class InstanceActionRepository {
  constructor(private readonly ds: DataSource) {}

  async start(action: NewInstanceAction): Promise<void> {
    await this.ds.query(
      `INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_uuid, request_id) DO NOTHING`,
      [action.instanceUuid, action.action, action.requestId, action.userId, action.projectId],
    );
  }

  /**
   * The event begins on `host` under the request's action (none recorded: nothing to record it
   * under).
   */
  async startEvent(instanceUuid: string, requestId: string, event: string, host: string): Promise<boolean> {
    // nova's action_event_start moves the action's updated_at to the event's start
    const rows = await updateReturning(
      this.ds,
      `WITH e AS (
         INSERT INTO instance_actions_events (action_id, event, host)
         SELECT id, $3, $4 FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2
         ON CONFLICT (action_id, event) DO UPDATE SET start_time = now(), finish_time = NULL, result = NULL,
                                                      traceback = NULL, host = EXCLUDED.host
         RETURNING action_id
       )
       UPDATE instance_actions a SET updated_at = now() FROM e WHERE a.id = e.action_id RETURNING a.id`,
      [instanceUuid, requestId, event, host],
    );
    return rows.length > 0;
  }

  /** The event ends with `Success`, or `Error` and what went wrong; the action ends with it. */
  async finishEvent(instanceUuid: string, requestId: string, event: string, failure?: string): Promise<void> {
    await this.ds.query(
      `WITH a AS (
         UPDATE instance_actions SET finish_time = now(), updated_at = now(),
                message = CASE WHEN $4::text IS NULL THEN message ELSE 'Error' END
          WHERE instance_uuid = $1 AND request_id = $2 RETURNING id
       )
       UPDATE instance_actions_events e SET finish_time = now(),
              result = CASE WHEN $4::text IS NULL THEN 'Success' ELSE 'Error' END, traceback = $4
         FROM a WHERE e.action_id = a.id AND e.event = $3`,
      [instanceUuid, requestId, event, failure ?? null],
    );
  }

  /**
   * The instance's actions, newest first (nova's order), those after the marker's when one is
   * given; a marker that is no action of the instance is nova's 400.
   */
  async list(instanceUuid: string, page: InstanceActionPage = {}): Promise<InstanceAction[]> {
    if (page.limit === 0) return [];
    const params: unknown[] = [instanceUuid];
    const where = ['instance_uuid = $1'];
    if (page.changesSince !== undefined) {
      params.push(page.changesSince);
      where.push(`updated_at >= $${params.length}`);
    }
    if (page.changesBefore !== undefined) {
      params.push(page.changesBefore);
      where.push(`updated_at <= $${params.length}`);
    }
    if (page.marker !== undefined) {
      const [marker]: Row[] = await this.ds.query(
        'SELECT id FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2',
        [instanceUuid, page.marker],
      );
      if (!marker) throw new InvalidInputError(`Marker ${page.marker} could not be found.`);
      params.push(marker.id);
      where.push(
        `(start_time, id) < (SELECT start_time, id FROM instance_actions WHERE id = $${params.length})`,
      );
    }
    if (page.limit !== undefined) params.push(page.limit);
    const rows: Row[] = await this.ds.query(
      `SELECT * FROM instance_actions WHERE ${where.join(' AND ')} ORDER BY start_time DESC, id DESC
       ${page.limit !== undefined ? `LIMIT $${params.length}` : ''}`,
      params,
    );
    return rows.map(toAction);
  }

  /** One action with its events, oldest first; undefined when the request did nothing to the instance. */
  async find(
    instanceUuid: string,
    requestId: string,
  ): Promise<{ action: InstanceAction; events: InstanceActionEvent[] } | undefined> {
    const [row]: Row[] = await this.ds.query(
      'SELECT * FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2',
      [instanceUuid, requestId],
    );
    if (!row) return undefined;
    const events: Row[] = await this.ds.query(
      'SELECT * FROM instance_actions_events WHERE action_id = $1 ORDER BY start_time, id',
      [row.id],
    );
    return {
      action: toAction(row),
      events: events.map((e) => ({
        event: String(e.event),
        startTime: date(e.start_time) as Date,
        finishTime: date(e.finish_time),
        result: (e.result as string | null) ?? null,
        traceback: (e.traceback as string | null) ?? null,
        host: (e.host as string | null) ?? null,
      })),
    };
  }
}

function toAction(r: Row): InstanceAction {
  return {
    action: String(r.action),
    instanceUuid: String(r.instance_uuid),
    requestId: String(r.request_id),
    userId: String(r.user_id),
    projectId: String(r.project_id),
    message: (r.message as string | null) ?? null,
    startTime: date(r.start_time) as Date,
    updatedAt: date(r.updated_at) as Date,
  };
}
