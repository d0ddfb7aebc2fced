import { randomUUID } from 'node:crypto';
import { InvalidStateError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';
import { type ChapCredentials, resealProviderAuth } from './provider-auth';
import { type QuotaLimits, quotaRefusal } from './quotas';
import type { SecretBox, SecretBoxError } from './secret-box';
import { type SnapshotStatus } from './snapshot-states';
import { SNAPSHOTS } from './snapshots';
import { compareAndSwap, liveRows, type Row, updateReturning } from './sql';
import { StatefulRepository } from './stateful-repository';
import type { Move } from './states';
import * as batches from './volume-batches';
import {
  type NewVolume,
  toVolume,
  VOLUMES,
  type VolumeChanges,
  type VolumeClaim,
  type VolumeRecord,
} from './volume-records';
import { VOLUME_STATES, type VolumeStatus } from './volume-states';

export interface VolumeFilter {
  readonly projectId?: string;
  readonly status?: string;
  readonly name?: string;
  readonly host?: string;
  readonly availabilityZone?: string;
  readonly bootable?: boolean;
  readonly size?: number;
  /** Volumes whose metadata holds all of these pairs. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** A filter no volume can meet (Cinder answers it with an empty list). */
  readonly matchesNothing?: boolean;
}

export type SortKey = 'created_at' | 'updated_at' | 'size' | 'status' | 'name' | 'id';
export const SORT_COLUMNS: Record<SortKey, string> = {
  created_at: 'created_at',
  updated_at: 'updated_at',
  size: 'size',
  status: 'status',
  // no NULLs in sort keys, so keyset comparisons never meet one
  name: "coalesce(display_name, '')",
  id: 'id',
};
const LISTING: Listing<SortKey> = {
  table: 'volumes',
  sortColumns: SORT_COLUMNS,
  notFound: (id) => `Volume ${id} could not be found.`,
};

export type VolumePage = Page<SortKey>;

const { beginExtend, beginExtendAttached } = VOLUME_STATES.moves;

/**
 * The volumes table. Every status change is a compare-and-swap along a move of VOLUME_STATES:
 * `UPDATE … WHERE status = ANY(from)` and the row count says whether this caller won; nothing
 * reads a status and then writes it.
 */
export class VolumeRepository extends StatefulRepository<VolumeRecord, VolumeStatus, VolumeChanges> {
  constructor(ds: DataSource) {
    super(ds, { table: VOLUMES, noun: 'Volume', toRecord: toVolume });
  }

  /**
   * Seals the host's stored CHAP secrets that are in clear or under a retired key, and those
   * `unopenable` recovers for a secret that does not open; how many were.
   */
  resealSecrets(
    host: string,
    box: SecretBox,
    unopenable: (volumeId: string, error: SecretBoxError) => Promise<ChapCredentials | undefined>,
  ): Promise<number> {
    return resealProviderAuth(this.ds, box, host, unopenable);
  }

  /**
   * Inserts a `creating` row if the project's quota allows it, named from `nameTemplate`. One
   * database function takes a per-project lock, reads the project's limits (`defaults` where it
   * has none), checks the usage and inserts, so concurrent requests cannot both squeeze in, at
   * the cost of one round trip.
   */
  async createWithinQuota(
    input: NewVolume,
    nameTemplate: string,
    defaults: QuotaLimits,
  ): Promise<VolumeRecord> {
    try {
      const [row] = await this.ds.query(
        'SELECT * FROM create_volume_within_quota($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)',
        [
          randomUUID(),
          input.size,
          input.availabilityZone,
          input.projectId,
          input.userId,
          input.displayName,
          input.displayDescription,
          input.volumeType,
          defaults.volumes,
          defaults.gigabytes,
          defaults.per_volume_gigabytes,
          nameTemplate,
          JSON.stringify(input.metadata ?? {}),
          input.snapshotId ?? null,
          input.sourceVolid ?? null,
          input.imageId ?? null,
          input.imageMetadata === undefined ? null : JSON.stringify(input.imageMetadata),
          input.bootable ?? false,
        ],
      );
      return toVolume(row);
    } catch (error) {
      throw quotaRefusal(error, 'volumes', input.size, input.size);
    }
  }

  /**
   * Starts an extend (available → extending; with `attached`, in-use → extending) if the
   * project's gigabytes quota takes the growth. The swap also requires the size the growth was
   * counted from: of two extends racing from one size, the second finds the volume grown and is
   * refused rather than shrinking it.
   */
  async beginExtendWithinQuota(
    volume: VolumeRecord,
    newSize: number,
    defaults: QuotaLimits,
    attached = false,
  ): Promise<void> {
    const move = attached ? beginExtendAttached : beginExtend;
    const growth = newSize - volume.size;
    if (!Number.isSafeInteger(volume.size)) throw new InvalidStateError(`volume ${volume.id} has no size`);
    await this.ds.transaction(async (tx) => {
      try {
        await tx.query('SELECT check_volume_quota($1, $2, 0, 0, $3, $4, $5, $6, $7, $8)', [
          volume.projectId,
          volume.volumeType,
          growth,
          defaults.volumes,
          defaults.snapshots,
          defaults.gigabytes,
          newSize,
          defaults.per_volume_gigabytes,
        ]);
      } catch (error) {
        throw quotaRefusal(error, 'volumes', growth, newSize);
      }
      const guard = [`size = ${volume.size}`];
      if (await compareAndSwap(tx, VOLUMES, volume.id, move, { extendTo: newSize }, guard)) return;
      const [now] = await tx.query('SELECT status, size FROM volumes WHERE id = $1', [volume.id]);
      if (now && move.from.includes(now.status) && now.size !== volume.size) {
        throw new InvalidStateError(
          `Invalid volume: Volume ${volume.id} was extended to ${now.size} GB meanwhile; ask for more than that.`,
        );
      }
      throw new InvalidStateError(
        `Invalid volume: Volume ${volume.id} status must be ${move.from.join(' or ')} to extend, but current status is: ${now?.status ?? volume.status}.`,
      );
    });
  }

  /**
   * Gives the volume type `typeId` along `move` (a retype without migration) if the type's own
   * quota takes the volume and its snapshots: Cinder's retype reserves only `volumes_<type>`,
   * `gigabytes_<type>` (the volume's size and its snapshots') and `snapshots_<type>`, since the
   * project's overall usage stays. The volume's row is locked before the quota lock, as
   * create_snapshot_within_quota takes them, so no snapshot slips in uncounted.
   */
  async retypeWithinQuota(
    volume: VolumeRecord,
    typeId: string,
    move: Move<VolumeStatus>,
    defaults: QuotaLimits,
  ): Promise<VolumeRecord> {
    return this.ds.transaction(async (tx) => {
      const [locked] = await tx.query(
        'SELECT size, status, project_id FROM volumes WHERE id = $1 AND NOT deleted FOR UPDATE',
        [volume.id],
      );
      if (!locked) throw this.notFound(volume.id);
      // as the row is now: a transfer may have moved it since `volume` was read
      const size = Number(locked.size);
      const projectId = String(locked.project_id);
      // the snapshots the project's usage counts under the volume's type (quota_usage)
      const [snapshots] = await tx.query(
        `SELECT count(*)::int AS n, coalesce(sum(volume_size), 0)::int AS gigabytes
           FROM snapshots WHERE volume_id = $1 AND project_id = $2 AND NOT deleted`,
        [volume.id, projectId],
      );
      try {
        await tx.query('SELECT check_volume_quota($1, $2, 1, $3, $4, $5, $6, $7, 0, -1, true)', [
          projectId,
          typeId,
          snapshots.n,
          size + snapshots.gigabytes,
          defaults.volumes,
          defaults.snapshots,
          defaults.gigabytes,
        ]);
      } catch (error) {
        throw quotaRefusal(error, 'volumes', size, size);
      }
      const row = await compareAndSwap(tx, VOLUMES, volume.id, move, { volumeType: typeId });
      if (!row) throw this.invalidState(volume.id, move, locked.status);
      return toVolume(row);
    });
  }

  /** Whether this database ever had the volume, deleted since or not. */
  async known(id: string): Promise<{ readonly deleted: boolean } | undefined> {
    const rows: { deleted: boolean }[] = await this.ds.query('SELECT deleted FROM volumes WHERE id = $1', [
      id,
    ]);
    return rows[0] && { deleted: rows[0].deleted };
  }

  /**
   * Deletes a volume no scheduler placed, at once (`deleteUnplaced`, `forceDeleteUnplaced`): the
   * swap holds only while the row has no host, so a volume placed since the caller read it (its
   * worker may be creating it) is left to the delete that goes through its host: false. A row
   * without a host in a state the move does not start from is refused.
   */
  async deleteUnplaced(id: string, move: Move<VolumeStatus>): Promise<boolean> {
    if (await compareAndSwap(this.ds, VOLUMES, id, move, {}, ['host IS NULL'])) return true;
    const current = await this.get(id);
    if (current.host !== null) return false;
    throw this.invalidState(id, move, current.status);
  }

  /**
   * Begins a delete along `move`, unless the volume has live snapshots; with `cascade` (a move
   * of the snapshots' table) its snapshots begin deleting too, in the same transaction. The
   * volume's row is locked first, as create_snapshot_within_quota locks it, so no snapshot
   * slips in between the check and the move. A volume not in `move.from` is an error.
   */
  async beginDelete(
    id: string,
    move: Move<VolumeStatus>,
    cascade?: Move<SnapshotStatus>,
  ): Promise<VolumeRecord> {
    const moved = await this.ds.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM volumes WHERE id = $1 FOR UPDATE', [id]);
      const snapshots: Row[] = await tx.query(
        'SELECT id, status FROM snapshots WHERE volume_id = $1 AND NOT deleted',
        [id],
      );
      if (snapshots.length > 0 && !cascade) {
        throw new InvalidStateError(
          `Invalid volume: Volume ${id} still has ${snapshots.length} dependent snapshots.`,
          { data: { volume_id: id } },
        );
      }
      const row = await compareAndSwap(tx, VOLUMES, id, move, { statusReason: null });
      if (!row) return undefined;
      for (const snapshot of snapshots) {
        if (
          !(await compareAndSwap(tx, SNAPSHOTS, String(snapshot.id), cascade as Move<SnapshotStatus>, {}))
        ) {
          throw new InvalidStateError(
            `Invalid volume: Snapshot ${String(snapshot.id)} of volume ${id} is ${String(snapshot.status)}; a cascade delete takes snapshots ${(cascade as Move<SnapshotStatus>).from.join(', ')}.`,
            { data: { volume_id: id } },
          );
        }
      }
      return toVolume(row);
    });
    if (moved) return moved;
    throw this.invalidState(id, move, (await this.get(id)).status);
  }

  /** Name and description: no status change, any state. */
  async rename(
    id: string,
    changes: Pick<VolumeChanges, 'displayName' | 'displayDescription'>,
  ): Promise<VolumeRecord> {
    // names are not state: a plain update, whatever status the volume is in meanwhile
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volumes SET display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
                          display_description = CASE WHEN $4 THEN $5 ELSE display_description END,
                          updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING *`,
      [
        id,
        changes.displayName !== undefined,
        changes.displayName ?? null,
        changes.displayDescription !== undefined,
        changes.displayDescription ?? null,
      ],
    );
    if (!row) throw this.notFound(id);
    return toVolume(row);
  }

  /**
   * Sets metadata keys (all of them, with `replace`: keys not given are dropped) and deletes
   * `remove`; answers the metadata as it then is. Metadata is not state: any status will do.
   */
  async updateMetadata(
    id: string,
    changes: {
      readonly set?: Readonly<Record<string, string>>;
      readonly replace?: boolean;
      readonly remove?: string;
    },
  ): Promise<VolumeRecord> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volumes SET metadata = (CASE WHEN $3 THEN $2::jsonb ELSE metadata || $2::jsonb END) - $4::text,
                          updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING *`,
      [id, JSON.stringify(changes.set ?? {}), changes.replace === true, changes.remove ?? ''],
    );
    if (!row) throw this.notFound(id);
    return toVolume(row);
  }

  /** Cinder's volume_image_metadata: pairs set (added or replaced) or one key removed. */
  async updateImageMetadata(
    id: string,
    changes: { readonly set?: Readonly<Record<string, string>>; readonly remove?: string },
  ): Promise<VolumeRecord> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volumes SET image_metadata = (coalesce(image_metadata, '{}'::jsonb) || $2::jsonb) - $3::text,
                          updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING *`,
      [id, JSON.stringify(changes.set ?? {}), changes.remove ?? ''],
    );
    if (!row) throw this.notFound(id);
    return toVolume(row);
  }

  /** Flags that are no state (bootable, read-only): set in any status. */
  async setFlags(
    id: string,
    flags: { readonly bootable?: boolean; readonly readOnly?: boolean },
  ): Promise<void> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volumes SET bootable = coalesce($2, bootable), read_only = coalesce($3, read_only), updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING id`,
      [id, flags.bootable ?? null, flags.readOnly ?? null],
    );
    if (!row) throw this.notFound(id);
  }

  /** How many live volumes of how many gigabytes each project has on `host`. */
  async usageOnHost(host: string): Promise<Array<{ projectId: string; count: number; gigabytes: number }>> {
    const rows: Row[] = await this.ds.query(
      `SELECT project_id, count(*)::int AS count, sum(size)::int AS gigabytes FROM volumes
        WHERE host = $1 AND NOT deleted GROUP BY project_id ORDER BY project_id`,
      [host],
    );
    return rows.map((r) => ({
      projectId: String(r.project_id),
      count: Number(r.count),
      gigabytes: Number(r.gigabytes),
    }));
  }

  /** Cinder's volumes summary: how many, how large, and every metadata value by key. */
  async summary(
    projectId: string | undefined,
  ): Promise<{ count: number; size: number; metadata: Record<string, string[]> }> {
    const [row] = await this.ds.query(
      `SELECT count(*)::int AS count, coalesce(sum(size), 0)::int AS size,
              (SELECT coalesce(jsonb_object_agg(k, vs), '{}') FROM (
                 SELECT m.key AS k, jsonb_agg(DISTINCT m.value) AS vs
                   FROM volumes v2, jsonb_each_text(v2.metadata) m
                  WHERE NOT v2.deleted AND ($1::varchar IS NULL OR v2.project_id = $1) GROUP BY m.key) keys
              ) AS metadata
         FROM volumes WHERE NOT deleted AND ($1::varchar IS NULL OR project_id = $1)`,
      [projectId ?? null],
    );
    return { count: Number(row.count), size: Number(row.size), metadata: row.metadata };
  }

  async list(filter: VolumeFilter, page: VolumePage): Promise<VolumeRecord[]> {
    const scope: Array<readonly [string, unknown?]> = liveRows(VOLUMES).map((sql) => [sql] as const);
    if (filter.projectId !== undefined) scope.push(['project_id = ?', filter.projectId]);
    const filters: Array<readonly [string, unknown?]> = [];
    if (filter.status !== undefined) filters.push(['status = ?', filter.status]);
    if (filter.name !== undefined) filters.push(['display_name = ?', filter.name]);
    if (filter.host !== undefined) filters.push(['host = ?', filter.host]);
    if (filter.availabilityZone !== undefined)
      filters.push(['availability_zone = ?', filter.availabilityZone]);
    if (filter.bootable !== undefined) filters.push(['bootable = ?', filter.bootable]);
    if (filter.size !== undefined) filters.push(['size = ?', filter.size]);
    if (filter.matchesNothing) filters.push(['false']);
    if (filter.metadata !== undefined)
      filters.push(['metadata @> ?::jsonb', JSON.stringify(filter.metadata)]);
    const rows = await keysetPage(this.ds, LISTING, { scope, filters }, page);
    return rows.map(toVolume);
  }

  /** Volumes being created that no scheduler placed, unchanged for `idleForSec`. */
  async unplaced(idleForSec: number): Promise<VolumeRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM volumes WHERE host IS NULL AND NOT deleted AND status = ANY($2)
          AND updated_at <= now() - make_interval(secs => $1) ORDER BY updated_at`,
      [idleForSec, VOLUME_STATES.moves.place.from],
    );
    return rows.map(toVolume);
  }

  /** The host's live volumes in `statuses`; with `idleForSec`, only those unchanged for that long. */
  async onHost(host: string, statuses: readonly VolumeStatus[], idleForSec = 0): Promise<VolumeRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM volumes WHERE host = $1 AND NOT deleted AND status = ANY($2)
          AND updated_at <= now() - make_interval(secs => $3) ORDER BY updated_at`,
      [host, [...statuses], idleForSec],
    );
    return rows.map(toVolume);
  }

  placeOnHosts(placements: readonly { id: string; host: string; pool?: string }[]): Promise<boolean[]> {
    return batches.placeOnHosts(this.ds, placements);
  }

  failUnplaced(id: string, reason: string, requestId: string): Promise<boolean> {
    return batches.failUnplaced(this.ds, id, reason, requestId);
  }

  claimForCreate(
    host: string,
    claims: readonly { id: string; providerAuth: string }[],
    maxTargets: number,
  ): Promise<Array<VolumeClaim | undefined>> {
    return batches.claimForCreate(this.ds, host, claims, maxTargets);
  }

  markCreated(created: readonly { id: string; providerLocation: string }[]): Promise<boolean[]> {
    return batches.markCreated(this.ds, created);
  }

  claimForDelete(host: string, ids: readonly string[]): Promise<Array<VolumeClaim | undefined>> {
    return batches.claimForDelete(this.ds, host, ids);
  }

  markDeleted(ids: readonly string[]): Promise<boolean[]> {
    return batches.markDeleted(this.ds, ids);
  }
}
