import { randomUUID } from 'node:crypto';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';
import { compareAndSwap, type StatefulTable } from './sql';
import { type Move, stateTable } from './states';

export const VM_STATES = ['building', 'active', 'error', 'deleted'] as const;
export type VmState = (typeof VM_STATES)[number];
export const TASK_STATES = ['scheduling', 'spawning', 'rebooting', 'rebooting_hard', 'deleting'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** An instance's state as Nova keeps it: the VM's stable state and the task under way, if any. */
export interface InstanceState {
  readonly vmState: VmState;
  readonly taskState: TaskState | null;
}

/** Every `<vm_state>/<task_state>` pair an instance can be in (an empty task meaning none). */
export const INSTANCE_STATUSES = [
  'building/scheduling',
  'building/spawning',
  'building/deleting',
  'active/',
  'active/rebooting',
  'active/rebooting_hard',
  'active/deleting',
  'error/',
  'error/rebooting_hard',
  'error/deleting',
  'deleted/',
] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

/**
 * Every move an instance may make, each a compare-and-swap on the pair (vm_state, task_state):
 * of two requests racing for one instance exactly one wins. A delete keeps the VM's state and
 * sets the task, as nova does, so it is one move per VM state.
 */
export const INSTANCE_STATES = stateTable('instance', INSTANCE_STATUSES, {
  /** The scheduler records the host it chose and hands the instance over. */
  schedule: { from: ['building/scheduling'], to: 'building/spawning', by: ['scheduler'] },
  spawned: { from: ['building/spawning'], to: 'active/', by: ['compute-worker'] },
  /** No host, a spawn, reboot or delete that failed: ERROR with the reason as the fault. */
  fail: {
    from: [
      'building/scheduling',
      'building/spawning',
      'active/rebooting',
      'active/rebooting_hard',
      'error/rebooting_hard',
      'building/deleting',
      'active/deleting',
      'error/deleting',
    ],
    to: 'error/',
    by: ['api', 'scheduler', 'compute-worker'],
  },
  reboot: { from: ['active/'], to: 'active/rebooting', by: ['api'] },
  // a hard reboot may take over a soft one that hangs, and may revive an instance in error
  rebootHard: { from: ['active/', 'active/rebooting'], to: 'active/rebooting_hard', by: ['api'] },
  rebootHardFromError: { from: ['error/'], to: 'error/rebooting_hard', by: ['api'] },
  rebooted: {
    from: ['active/rebooting', 'active/rebooting_hard', 'error/rebooting_hard'],
    to: 'active/',
    by: ['api', 'compute-worker'],
  },
  deleteBuilding: {
    from: ['building/scheduling', 'building/spawning'],
    to: 'building/deleting',
    by: ['api'],
  },
  deleteActive: {
    from: ['active/', 'active/rebooting', 'active/rebooting_hard'],
    to: 'active/deleting',
    by: ['api'],
  },
  deleteError: { from: ['error/'], to: 'error/deleting', by: ['api'] },
  /** Nothing of it is left on any host: the row stays, soft-deleted, so the API can show it DELETED. */
  finishDelete: {
    from: ['building/deleting', 'active/deleting', 'error/deleting'],
    to: 'deleted/',
    by: ['api', 'compute-worker'],
  },
});

export type InstanceMove = Move<InstanceStatus>;

/** The columns a move may set besides the state. */
export interface InstanceChanges {
  readonly host?: string;
  readonly faultMessage?: string | null;
  readonly launchedAt?: Date;
}

const INSTANCES: StatefulTable<InstanceChanges> = {
  table: 'instances',
  stateColumn: ['vm_state', 'task_state'],
  columns: { host: 'host', faultMessage: 'fault_message', launchedAt: 'launched_at' },
  deletedState: 'deleted/',
};

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
  /** The server's tags (nova's instance tags), each once, in the order first given. */
  readonly tags: readonly string[];
  /** The trusted image certificate ids given at create (nova 2.63), null when none were. */
  readonly trustedCerts: readonly string[] | null;
}

export type NewInstance = Pick<
  InstanceRecord,
  | 'projectId'
  | 'userId'
  | 'displayName'
  | 'flavorId'
  | 'memoryMb'
  | 'vcpus'
  | 'rootGb'
  | 'ephemeralGb'
  | 'imageId'
> & { readonly tags?: readonly string[]; readonly trustedCerts?: readonly string[] };

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

/**
 * What a server list sorts by (nova's VALID_SORT_KEYS), as SQL with no NULLs. Keys for what
 * Basalt's servers never have (addresses, key pairs, kernels) are one constant for every row, so
 * the order falls to the created_at and id tie-breakers, as it does in nova where all are NULL.
 */
// constants are cast: PostgreSQL refuses a bare constant (or takes an integer as a column
// position) in ORDER BY
const SORT_COLUMNS = {
  access_ip_v4: "''::text",
  access_ip_v6: "''::text",
  auto_disk_config: "''::text",
  availability_zone: "''::text",
  config_drive: "''::text",
  created_at: 'created_at',
  display_description: "''::text",
  display_name: 'display_name',
  host: "coalesce(host, '')",
  hostname: 'display_name',
  image_ref: 'image_id::text',
  instance_type_id: 'flavor_id',
  kernel_id: "''::text",
  key_name: "''::text",
  launch_index: '0::int',
  launched_at: "coalesce(launched_at, 'epoch'::timestamptz)",
  locked_by: "''::text",
  node: "coalesce(host, '')",
  power_state: "(CASE vm_state WHEN 'active' THEN 1 ELSE 0 END)",
  progress: '0::int',
  project_id: 'project_id',
  ramdisk_id: "''::text",
  root_device_name: "''::text",
  task_state: "coalesce(task_state, '')",
  terminated_at: "''::text",
  updated_at: 'updated_at',
  user_id: 'user_id',
  uuid: 'id',
  vm_state: 'vm_state',
  // nova 2.73's sort key; no instance is ever locked here
  locked: 'false::boolean',
  id: 'id',
} as const;
export type InstanceSortKey = Exclude<keyof typeof SORT_COLUMNS, 'id'>;
export const INSTANCE_SORT_KEYS = Object.keys(SORT_COLUMNS).filter((k) => k !== 'id') as InstanceSortKey[];
export type InstancePage = Page<InstanceSortKey>;

const LISTING: Listing<InstanceSortKey> = {
  table: 'instances',
  sortColumns: SORT_COLUMNS,
  badMarker: (id) => new InvalidInputError(`marker [${id}] not found`),
};
/** PostgreSQL's invalid_regular_expression. */
const INVALID_REGEX = '2201B';

/** A server list's filters (nova's search_opts once the API has read them). */
export interface InstanceFilter {
  readonly projectId?: string;
  readonly deleted?: boolean;
  /** A POSIX regular expression the name must match somewhere. */
  readonly name?: string;
  readonly host?: string;
  /** Nova's names: states Basalt's instances never take match nothing. */
  readonly vmStates?: readonly string[];
  /** null: no task. */
  readonly taskStates?: readonly (string | null)[];
  readonly changesSince?: Date;
  readonly changesBefore?: Date;
  /** Nova's tag filters: every one of `tags`, any of `tagsAny`, not all of `notTags`, none of `notTagsAny`. */
  readonly tags?: readonly string[];
  readonly tagsAny?: readonly string[];
  readonly notTags?: readonly string[];
  readonly notTagsAny?: readonly string[];
  /** Nova 2.73's locked filter: no instance is ever locked here, so `true` matches none. */
  readonly locked?: boolean;
}

/** The instances table; every state change through `transition`. */
export class InstanceRepository {
  constructor(private readonly ds: DataSource) {}

  async create(input: NewInstance): Promise<InstanceRecord> {
    const [row] = await this.ds.query(
      `INSERT INTO instances (id, project_id, user_id, display_name, flavor_id, memory_mb, vcpus, root_gb,
                              ephemeral_gb, image_id, tags, trusted_certs, vm_state, task_state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'building', 'scheduling') RETURNING *`,
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
        [...new Set(input.tags ?? [])],
        input.trustedCerts ?? null,
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
   * Moves the instance along `move`, setting `changes` in the same statement; undefined when it
   * was not in one of the move's sources (someone else won, or it moved on).
   */
  async transition(
    id: string,
    move: InstanceMove,
    changes: InstanceChanges = {},
  ): Promise<InstanceRecord | undefined> {
    const row = await compareAndSwap(this.ds, INSTANCES, id, move, changes);
    return row ? toInstance(row) : undefined;
  }

  /** One page of instances, as nova's `instance_get_all_by_filters_sort` finds them. */
  async list(filter: InstanceFilter, page: InstancePage): Promise<InstanceRecord[]> {
    const scope: Array<readonly [string, unknown?]> = [];
    if (filter.projectId !== undefined) scope.push(['project_id = ?', filter.projectId]);
    const filters: Array<readonly [string, unknown?]> = [];
    // deleted rows only where asked for: by a deleted filter, or by changes-since
    if (filter.deleted !== undefined) filters.push(['deleted = ?', filter.deleted]);
    if (filter.name !== undefined) filters.push(['display_name ~ ?', filter.name]);
    if (filter.host !== undefined) filters.push(['host = ?', filter.host]);
    if (filter.vmStates !== undefined) filters.push(['vm_state = ANY(?)', filter.vmStates]);
    if (filter.taskStates !== undefined) {
      filters.push(["coalesce(task_state, '') = ANY(?)", filter.taskStates.map((t) => t ?? '')]);
    }
    if (filter.changesSince !== undefined) filters.push(['updated_at >= ?', filter.changesSince]);
    if (filter.changesBefore !== undefined) filters.push(['updated_at <= ?', filter.changesBefore]);
    if (filter.tags !== undefined) filters.push(['tags @> ?::text[]', filter.tags]);
    if (filter.tagsAny !== undefined) filters.push(['tags && ?::text[]', filter.tagsAny]);
    if (filter.notTags !== undefined) filters.push(['NOT (tags @> ?::text[])', filter.notTags]);
    if (filter.notTagsAny !== undefined) filters.push(['NOT (tags && ?::text[])', filter.notTagsAny]);
    if (filter.locked !== undefined) filters.push(['NOT ?::boolean', filter.locked]);
    try {
      return (await keysetPage(this.ds, LISTING, { scope, filters }, page)).map(toInstance);
    } catch (error) {
      // the name filter is a regular expression, and PostgreSQL's word on it is final
      if ((error as { driverError?: { code?: string } }).driverError?.code === INVALID_REGEX) {
        throw new InvalidInputError(`Invalid regular expression in the name filter: ${filter.name}`);
      }
      throw error;
    }
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
    tags: (r.tags as string[] | null) ?? [],
    trustedCerts: (r.trusted_certs as string[] | null) ?? null,
  };
}
