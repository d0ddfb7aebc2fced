import { randomUUID } from 'node:crypto';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { DataSource, EntityManager } from 'typeorm';
import { updateReturning } from './volumes';

export const VM_STATES = ['building', 'active', 'error', 'deleted'] as const;
export type VmState = (typeof VM_STATES)[number];
export const TASK_STATES = ['scheduling', 'spawning', 'rebooting', 'rebooting_hard', 'deleting'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** An instance's state as Nova keeps it: the VM's stable state and the task under way, if any. */
export interface InstanceState {
  readonly vmState: VmState;
  readonly taskState: TaskState | null;
}

const key = (s: InstanceState) => `${s.vmState}/${s.taskState ?? ''}`;

/**
 * Every state change an instance may make: from which states, to which. A transition is a
 * compare-and-swap on the pair (vm_state, task_state), so of two requests racing for one
 * instance exactly one wins.
 */
export const INSTANCE_TRANSITIONS = {
  schedule: {
    from: [{ vmState: 'building', taskState: 'scheduling' }],
    to: { vmState: 'building', taskState: 'spawning' },
  },
  spawned: {
    from: [{ vmState: 'building', taskState: 'spawning' }],
    to: { vmState: 'active', taskState: null },
  },
  fail: {
    from: [
      { vmState: 'building', taskState: 'scheduling' },
      { vmState: 'building', taskState: 'spawning' },
      { vmState: 'active', taskState: 'rebooting' },
      { vmState: 'active', taskState: 'rebooting_hard' },
      { vmState: 'error', taskState: 'rebooting_hard' },
      // a delete that failed on its host; deleting again may finish it
      { vmState: 'building', taskState: 'deleting' },
      { vmState: 'active', taskState: 'deleting' },
      { vmState: 'error', taskState: 'deleting' },
    ],
    to: { vmState: 'error', taskState: null },
  },
  reboot: {
    from: [{ vmState: 'active', taskState: null }],
    to: { vmState: 'active', taskState: 'rebooting' },
  },
  // a hard reboot may take over a soft one that hangs, and may revive an instance in error
  rebootHard: {
    from: [
      { vmState: 'active', taskState: null },
      { vmState: 'active', taskState: 'rebooting' },
      { vmState: 'error', taskState: null },
    ],
    to: { vmState: 'active', taskState: 'rebooting_hard' },
  },
  rebooted: {
    from: [
      { vmState: 'active', taskState: 'rebooting' },
      { vmState: 'active', taskState: 'rebooting_hard' },
    ],
    to: { vmState: 'active', taskState: null },
  },
  delete: {
    from: [
      { vmState: 'building', taskState: 'scheduling' },
      { vmState: 'building', taskState: 'spawning' },
      { vmState: 'active', taskState: null },
      { vmState: 'active', taskState: 'rebooting' },
      { vmState: 'active', taskState: 'rebooting_hard' },
      { vmState: 'error', taskState: null },
    ],
    // the VM keeps its state while the delete is under way
    to: { vmState: null, taskState: 'deleting' },
  },
} as const satisfies Record<
  string,
  { from: readonly InstanceState[]; to: { vmState: VmState | null; taskState: TaskState | null } }
>;
export type InstanceTransition = keyof typeof INSTANCE_TRANSITIONS;

/** The API's `status` of an instance (nova/api/openstack/common.py's state map). */
export function serverStatus(s: InstanceState, deleted = false): string {
  if (deleted || s.vmState === 'deleted') return 'DELETED';
  if (s.vmState === 'building') return 'BUILD';
  if (s.taskState === 'rebooting') return 'REBOOT';
  if (s.taskState === 'rebooting_hard') return 'HARD_REBOOT';
  if (s.vmState === 'error') return 'ERROR';
  return 'ACTIVE';
}

export interface InstanceRecord extends InstanceState {
  readonly id: string;
  readonly seq: number;
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string;
  readonly flavorId: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  readonly rootGb: number;
  readonly ephemeralGb: number;
  readonly imageId: string;
  readonly host: string | null;
  readonly faultMessage: string | null;
  readonly launchedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly deleted: boolean;
}

export interface NewInstance {
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string;
  readonly flavorId: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  readonly rootGb: number;
  readonly ephemeralGb: number;
  readonly imageId: string;
}

/**
 * An instance's hypervisor and folder name from its sequence number and `[compute]
 * instance_name_template` (`instance-%08x`), as the API shows it and the compute host names it.
 */
export function instanceName(template: string, seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new InvalidInputError(`Bad instance number ${seq}`);
  return template.replace(/%(0?)(\d*)x/, (_m, zero: string, width: string) =>
    seq.toString(16).padStart(Number(width || 0), zero === '0' ? '0' : ' '),
  );
}

/** The instances table; every state change through `transition`. */
export class InstanceRepository {
  constructor(private readonly ds: DataSource) {}

  async create(input: NewInstance): Promise<InstanceRecord> {
    const [row] = await this.ds.query(
      `INSERT INTO instances (id, project_id, user_id, display_name, flavor_id, memory_mb, vcpus, root_gb,
                              ephemeral_gb, image_id, vm_state, task_state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'building', 'scheduling') RETURNING *`,
      [
        randomUUID(),
        input.projectId,
        input.userId,
        input.displayName,
        input.flavorId,
        input.memoryMb,
        input.vcpus,
        input.rootGb,
        input.ephemeralGb,
        input.imageId,
      ],
    );
    return toInstance(row);
  }

  /** A live instance, or (with `withDeleted`) one deleted already. */
  async find(id: string, withDeleted = false): Promise<InstanceRecord | undefined> {
    const rows = await this.ds.query(
      `SELECT * FROM instances WHERE id = $1 ${withDeleted ? '' : 'AND NOT deleted'}`,
      [id],
    );
    return rows[0] ? toInstance(rows[0]) : undefined;
  }

  async get(id: string): Promise<InstanceRecord> {
    const instance = await this.find(id);
    if (!instance) throw new NotFoundError(`Instance ${id} could not be found.`);
    return instance;
  }

  /**
   * Makes `name` happen to the instance if it is in one of the transition's source states, with
   * `changes` in the same statement; undefined when it was not (someone else won, or it moved on).
   */
  async transition(
    id: string,
    name: InstanceTransition,
    changes: { host?: string; faultMessage?: string | null; launchedAt?: Date } = {},
    db: DataSource | EntityManager = this.ds,
  ): Promise<InstanceRecord | undefined> {
    const t = INSTANCE_TRANSITIONS[name];
    const sets = ['vm_state = coalesce($3, vm_state)', 'task_state = $4', 'updated_at = now()'];
    const params: unknown[] = [id, t.from.map(key), t.to.vmState as VmState | null, t.to.taskState];
    const columns = { host: 'host', faultMessage: 'fault_message', launchedAt: 'launched_at' } as const;
    for (const [k, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      params.push(value);
      sets.push(`${columns[k as keyof typeof columns]} = $${params.length}`);
    }
    const [row] = await updateReturning(
      db,
      `UPDATE instances SET ${sets.join(', ')}
        WHERE id = $1 AND NOT deleted AND (vm_state || '/' || coalesce(task_state, '')) = ANY($2) RETURNING *`,
      params,
    );
    return row ? toInstance(row) : undefined;
  }

  /** The end of a delete: the row is kept (soft-deleted) so the API can still show it DELETED. */
  async markDeleted(id: string): Promise<boolean> {
    const rows = await updateReturning(
      this.ds,
      `UPDATE instances SET vm_state = 'deleted', task_state = NULL, deleted = true, deleted_at = now(),
              updated_at = now()
        WHERE id = $1 AND NOT deleted AND task_state = 'deleting' RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  async list(filter: { projectId?: string; name?: string }, limit: number): Promise<InstanceRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM instances WHERE NOT deleted AND ($1::varchar IS NULL OR project_id = $1)
          AND ($2::varchar IS NULL OR strpos(display_name, $2) > 0)
        ORDER BY created_at DESC, id DESC LIMIT $3`,
      [filter.projectId ?? null, filter.name ?? null, limit],
    );
    return rows.map(toInstance);
  }

  /** The live instances placed on `host` (what a compute worker owns). */
  async onHost(host: string): Promise<InstanceRecord[]> {
    const rows = await this.ds.query('SELECT * FROM instances WHERE host = $1 AND NOT deleted ORDER BY seq', [
      host,
    ]);
    return rows.map(toInstance);
  }

  /** Live instances that never left `scheduling` for `idleForSec` (their request was lost). */
  async unplaced(idleForSec: number): Promise<InstanceRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM instances WHERE NOT deleted AND vm_state = 'building' AND task_state = 'scheduling'
          AND host IS NULL AND updated_at < now() - make_interval(secs => $1) ORDER BY seq`,
      [idleForSec],
    );
    return rows.map(toInstance);
  }
}

function toInstance(r: Record<string, unknown>): InstanceRecord {
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(String(v)));
  return {
    id: String(r.id),
    seq: Number(r.seq),
    projectId: String(r.project_id),
    userId: String(r.user_id),
    displayName: String(r.display_name),
    flavorId: String(r.flavor_id),
    memoryMb: Number(r.memory_mb),
    vcpus: Number(r.vcpus),
    rootGb: Number(r.root_gb),
    ephemeralGb: Number(r.ephemeral_gb),
    imageId: String(r.image_id),
    host: (r.host as string | null) ?? null,
    vmState: r.vm_state as VmState,
    taskState: (r.task_state as TaskState | null) ?? null,
    faultMessage: (r.fault_message as string | null) ?? null,
    launchedAt: date(r.launched_at),
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
    deleted: r.deleted === true,
  };
}
