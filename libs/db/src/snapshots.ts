import { randomUUID } from 'node:crypto';
import { InvalidStateError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';
import { type QuotaLimits, quotaRefusal } from './quotas';
import type { SnapshotStatus } from './snapshot-states';
import { date, liveRows, type Row, type StatefulTable, updateReturning } from './sql';
import { StatefulRepository } from './stateful-repository';

export interface SnapshotRecord {
  readonly id: string;
  readonly volumeId: string;
  /** `snapshot-<id>`: Cinder's snapshot_name_template. */
  readonly backendName: string;
  /** The origin volume's size when the snapshot was taken, in GiB. */
  readonly volumeSize: number;
  readonly status: SnapshotStatus;
  readonly statusReason: string | null;
  /** Cinder's progress string: `0%` until the worker took it, `100%` after. */
  readonly progress: string;
  /** The origin's host: a snapshot lives where its volume does. */
  readonly host: string;
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface SnapshotChanges {
  readonly statusReason?: string | null;
  readonly progress?: string;
  /** A transfer of its volume hands the snapshot to the acceptor. */
  readonly projectId?: string;
  readonly userId?: string;
}

export const SNAPSHOTS: StatefulTable<SnapshotChanges> = {
  table: 'snapshots',
  stateColumn: 'status',
  deletedState: 'deleted',
  columns: {
    statusReason: 'status_reason',
    progress: 'progress',
    projectId: 'project_id',
    userId: 'user_id',
  },
};

export interface NewSnapshot {
  readonly volumeId: string;
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  /** The volume statuses the snapshot may be taken in. */
  readonly volumeStatuses: readonly string[];
}

export interface SnapshotFilter {
  readonly projectId?: string;
  readonly status?: string;
  readonly name?: string;
  readonly volumeId?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** A filter no snapshot can meet (Cinder answers it with an empty list). */
  readonly matchesNothing?: boolean;
}

/** Cinder's snapshot sort keys: `name` or its column `display_name` (which Cinder's API takes too). */
export type SnapshotSortKey =
  | 'created_at'
  | 'updated_at'
  | 'size'
  | 'status'
  | 'name'
  | 'display_name'
  | 'id';
export const SNAPSHOT_SORT_COLUMNS: Record<SnapshotSortKey, string> = {
  created_at: 'created_at',
  updated_at: 'updated_at',
  size: 'volume_size',
  status: 'status',
  name: "coalesce(display_name, '')",
  display_name: "coalesce(display_name, '')",
  id: 'id',
};
const LISTING: Listing<SnapshotSortKey> = {
  table: 'snapshots',
  sortColumns: SNAPSHOT_SORT_COLUMNS,
  notFound: (id) => `Snapshot ${id} could not be found.`,
};

/** The SQLSTATE create_snapshot_within_quota raises when the volume takes no snapshot now. */
const NOT_SNAPSHOTTABLE = 'BQ002';

/** The snapshots table: every status change a compare-and-swap along a move of SNAPSHOT_STATES. */
export class SnapshotRepository extends StatefulRepository<SnapshotRecord, SnapshotStatus, SnapshotChanges> {
  constructor(ds: DataSource) {
    super(ds, { table: SNAPSHOTS, noun: 'Snapshot', toRecord: toSnapshot });
  }

  /**
   * Inserts a `creating` snapshot of the volume on its host, if the volume is in one of the
   * statuses asked and the quota takes one more snapshot and its gigabytes: one round trip.
   */
  async createWithinQuota(input: NewSnapshot, defaults: QuotaLimits): Promise<SnapshotRecord> {
    try {
      const [row] = await this.ds.query(
        'SELECT * FROM create_snapshot_within_quota($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [
          randomUUID(),
          input.volumeId,
          input.projectId,
          input.userId,
          input.displayName,
          input.displayDescription,
          JSON.stringify(input.metadata),
          [...input.volumeStatuses],
          defaults.volumes,
          defaults.snapshots,
          defaults.gigabytes,
        ],
      );
      return toSnapshot(row);
    } catch (error) {
      const refused = error as { code?: string; detail?: string };
      if (refused.code === NOT_SNAPSHOTTABLE) {
        throw new InvalidStateError(
          `Invalid volume: Volume ${input.volumeId} status must be ${input.volumeStatuses.join(' or ')}, but current status is: ${refused.detail}.`,
          { data: { volume_id: input.volumeId, status: refused.detail } },
        );
      }
      throw quotaRefusal(error, 'snapshots', 0, 0);
    }
  }

  /** Name, description and metadata (all of it with `replace`; `remove` drops a key): not state. */
  async update(
    id: string,
    changes: {
      readonly displayName?: string | null;
      readonly displayDescription?: string | null;
      readonly metadata?: Readonly<Record<string, string>>;
      readonly replace?: boolean;
      readonly remove?: string;
    },
  ): Promise<SnapshotRecord> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE snapshots SET display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
                            display_description = CASE WHEN $4 THEN $5 ELSE display_description END,
                            metadata = (CASE WHEN $7 THEN $6::jsonb ELSE metadata || $6::jsonb END) - $8::text,
                            updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING *`,
      [
        id,
        changes.displayName !== undefined,
        changes.displayName ?? null,
        changes.displayDescription !== undefined,
        changes.displayDescription ?? null,
        JSON.stringify(changes.metadata ?? {}),
        changes.replace === true,
        changes.remove ?? '',
      ],
    );
    if (!row) throw this.notFound(id);
    return toSnapshot(row);
  }

  async list(filter: SnapshotFilter, page: Page<SnapshotSortKey>): Promise<SnapshotRecord[]> {
    if (filter.matchesNothing) return [];
    const scope: Array<readonly [string, unknown?]> = liveRows(SNAPSHOTS).map((sql) => [sql] as const);
    if (filter.projectId !== undefined) scope.push(['project_id = ?', filter.projectId]);
    const filters: Array<readonly [string, unknown]> = [];
    if (filter.status !== undefined) filters.push(['status = ?', filter.status]);
    if (filter.name !== undefined) filters.push(['display_name = ?', filter.name]);
    if (filter.volumeId !== undefined) filters.push(['volume_id::text = ?', filter.volumeId]);
    if (filter.metadata !== undefined)
      filters.push(['metadata @> ?::jsonb', JSON.stringify(filter.metadata)]);
    return (await keysetPage(this.ds, LISTING, { scope, filters }, page)).map(toSnapshot);
  }

  /** The live snapshots of a volume, oldest first. */
  async ofVolume(volumeId: string): Promise<SnapshotRecord[]> {
    const rows: Row[] = await this.ds.query(
      'SELECT * FROM snapshots WHERE volume_id = $1 AND NOT deleted ORDER BY created_at, id',
      [volumeId],
    );
    return rows.map(toSnapshot);
  }

  /** The host's live snapshots in `statuses`; with `idleForSec`, only those unchanged for that long. */
  async onHost(host: string, statuses: readonly SnapshotStatus[], idleForSec = 0): Promise<SnapshotRecord[]> {
    const rows: Row[] = await this.ds.query(
      `SELECT * FROM snapshots WHERE host = $1 AND NOT deleted AND status = ANY($2)
          AND updated_at <= now() - make_interval(secs => $3) ORDER BY updated_at`,
      [host, [...statuses], idleForSec],
    );
    return rows.map(toSnapshot);
  }
}

export function toSnapshot(r: Row): SnapshotRecord {
  return {
    id: String(r.id),
    volumeId: String(r.volume_id),
    backendName: String(r.backend_name),
    volumeSize: Number(r.volume_size),
    status: r.status as SnapshotStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    progress: String(r.progress),
    host: String(r.host),
    projectId: String(r.project_id),
    userId: String(r.user_id),
    displayName: (r.display_name as string | null) ?? null,
    displayDescription: (r.display_description as string | null) ?? null,
    metadata: (r.metadata as Record<string, string> | undefined) ?? {},
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
  };
}
