import type { DataSource } from 'typeorm';
import { date, type Row } from './sql';

/** Nova's names of the actions Basalt records. */
export const INSTANCE_ACTIONS = { extendVolume: 'extend_volume' } as const;

export interface InstanceActionEvent {
  readonly event: string;
  readonly startTime: Date;
  readonly finishTime: Date | null;
  /** `Success` or `Error` once finished (Nova's words). */
  readonly result: string | null;
  readonly traceback: string | null;
}

export interface InstanceAction {
  readonly action: string;
  readonly instanceUuid: string;
  readonly requestId: string;
  readonly userId: string;
  readonly projectId: string;
  readonly message: string | null;
  readonly startTime: Date;
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

  /** The event begins under the request's action (none recorded: nothing to record it under). */
  async startEvent(instanceUuid: string, requestId: string, event: string): Promise<boolean> {
    const rows: Row[] = await this.ds.query(
      `INSERT INTO instance_actions_events (action_id, event)
       SELECT id, $3 FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2
       ON CONFLICT (action_id, event) DO UPDATE SET start_time = now(), finish_time = NULL, result = NULL,
                                                    traceback = NULL
       RETURNING id`,
      [instanceUuid, requestId, event],
    );
    return rows.length > 0;
  }

  /** The event ends with `Success`, or `Error` and what went wrong; the action ends with it. */
  async finishEvent(instanceUuid: string, requestId: string, event: string, failure?: string): Promise<void> {
    await this.ds.query(
      `WITH a AS (
         UPDATE instance_actions SET finish_time = now(), message = CASE WHEN $4::text IS NULL THEN message ELSE 'Error' END
          WHERE instance_uuid = $1 AND request_id = $2 RETURNING id
       )
       UPDATE instance_actions_events e SET finish_time = now(),
              result = CASE WHEN $4::text IS NULL THEN 'Success' ELSE 'Error' END, traceback = $4
         FROM a WHERE e.action_id = a.id AND e.event = $3`,
      [instanceUuid, requestId, event, failure ?? null],
    );
  }

  /** The instance's actions, newest first (nova's order). */
  async list(instanceUuid: string): Promise<InstanceAction[]> {
    const rows: Row[] = await this.ds.query(
      'SELECT * FROM instance_actions WHERE instance_uuid = $1 ORDER BY start_time DESC, id DESC',
      [instanceUuid],
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
  };
}
