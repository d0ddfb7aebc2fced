import type { RequestContext } from '@basalt/context';
import type { VolumeRpcApi } from '@basalt/contracts';
import {
  FORCE_SNAPSHOTTABLE_STATUSES,
  type QuotaLimits,
  SNAPSHOT_STATES,
  SNAPSHOTTABLE_STATUSES,
  type SnapshotRecord,
  type SnapshotRepository,
} from '@basalt/db';
import { errorMessage, InvalidInputError, NotFoundError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { leftToSweep, requireProject, type VolumeApi } from './volume-api';

export interface CreateSnapshotRequest {
  readonly volumeId: string;
  readonly name: string | null;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  /** Also of an `in-use` volume (Cinder's `force`). */
  readonly force: boolean;
}

const { failCreate, beginDelete, beginForceDelete, failDelete, reset, report } =
  SNAPSHOT_STATES.movesOf('api');

/**
 * What os-update_snapshot_status may set, by the status the snapshot is in (Cinder's map): the
 * snapshot's creator reports how its create or delete went.
 */
const STATUS_UPDATES: Readonly<Record<string, readonly SnapshotRecord['status'][]>> = {
  creating: ['creating', 'available', 'error'],
  deleting: ['deleting', 'error_deleting'],
};

/** The snapshot API's decisions (Cinder's volume/api.py for snapshots): check, write, then cast. */
export class SnapshotApi {
  constructor(
    private readonly deps: {
      readonly volumes: VolumeApi;
      readonly snapshots: SnapshotRepository;
      readonly volumeRpc: VolumeRpcApi;
      readonly log: Logger;
    },
    private readonly options: { readonly quotaDefaults: QuotaLimits },
  ) {}

  async create(ctx: RequestContext, request: CreateSnapshotRequest): Promise<SnapshotRecord> {
    const projectId = requireProject(ctx);
    const volume = await this.deps.volumes.get(ctx, request.volumeId);
    const snapshot = await this.deps.snapshots.createWithinQuota(
      {
        volumeId: volume.id,
        projectId,
        userId: ctx.userId ?? projectId,
        displayName: request.name,
        displayDescription: request.description,
        metadata: request.metadata,
        volumeStatuses: request.force ? FORCE_SNAPSHOTTABLE_STATUSES : SNAPSHOTTABLE_STATUSES,
      },
      this.options.quotaDefaults,
    );
    try {
      await this.deps.volumeRpc.create_snapshot(ctx, snapshot.host, { snapshot_id: snapshot.id });
    } catch (error) {
      // the snapshot is recorded: its host's sweep takes it up once the broker is back
      if (leftToSweep(this.deps.log, { snapshot_id: snapshot.id }, 'create snapshot', error)) return snapshot;
      await this.deps.snapshots.transition(snapshot.id, failCreate, {
        statusReason: `could not reach ${snapshot.host}: ${errorMessage(error)}`,
      });
      throw error;
    }
    return snapshot;
  }

  /** A snapshot the caller may see: its own project's, or any for an admin. */
  async get(ctx: RequestContext, id: string): Promise<SnapshotRecord> {
    const snapshot = await this.deps.snapshots.find(id);
    if (!snapshot || (!ctx.isAdmin && snapshot.projectId !== requireProject(ctx))) {
      throw new NotFoundError(`Snapshot ${id} could not be found.`);
    }
    return snapshot;
  }

  /** `force`: os-force_delete (whose policy rule says who may), which also takes a snapshot stuck creating or deleting. */
  async delete(ctx: RequestContext, id: string, force = false): Promise<void> {
    const snapshot = await this.get(ctx, id);
    await this.deps.snapshots.transitionOrThrow(id, force ? beginForceDelete : beginDelete, {
      statusReason: null,
    });
    try {
      await this.deps.volumeRpc.delete_snapshot(ctx, snapshot.host, { snapshot_id: id });
    } catch (error) {
      if (leftToSweep(this.deps.log, { snapshot_id: id }, 'delete snapshot', error)) return;
      await this.deps.snapshots.transition(id, failDelete, {
        statusReason: `the delete could not be sent to ${snapshot.host}: ${errorMessage(error)}`,
      });
      throw error;
    }
  }

  async resetStatus(ctx: RequestContext, id: string, status: string): Promise<void> {
    const target = reset.to.find((s) => s === status);
    if (!target) {
      throw new InvalidInputError(`Invalid status '${status}'; must be one of ${reset.to.join(', ')}.`);
    }
    await this.get(ctx, id);
    await this.deps.snapshots.transitionOrThrow(id, SNAPSHOT_STATES.toward(reset, target), {
      statusReason: null,
    });
  }

  /** os-update_snapshot_status: how a create or delete went, with its progress, as Cinder maps it. */
  async updateStatus(ctx: RequestContext, id: string, status: string, progress?: string): Promise<void> {
    const snapshot = await this.get(ctx, id);
    const allowed = STATUS_UPDATES[snapshot.status] ?? [];
    const target = allowed.find((s) => s === status);
    if (!target) {
      throw new InvalidInputError(
        `Provided snapshot status ${status} not allowed for snapshot with status ${snapshot.status}.`,
      );
    }
    // only from the status the map was read for: a snapshot that moved meanwhile is refused
    const move = { ...SNAPSHOT_STATES.toward(report, target), from: [snapshot.status] };
    await this.deps.snapshots.transitionOrThrow(id, move, progress === undefined ? {} : { progress });
  }
}
