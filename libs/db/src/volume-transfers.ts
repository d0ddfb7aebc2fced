import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { InvalidInputError, InvalidStateError, NotFoundError } from '@basalt/errors';
import type { DataSource, EntityManager } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';
import { type QuotaLimits, quotaRefusal } from './quotas';
import { SNAPSHOT_STATES } from './snapshot-states';
import { SNAPSHOTS } from './snapshots';
import { compareAndSwap, type Row, updateReturning } from './sql';
import { toVolume, VOLUMES, type VolumeRecord } from './volume-records';
import { VOLUME_STATES } from './volume-states';

export interface TransferRecord {
  readonly id: string;
  readonly volumeId: string;
  readonly name: string | null;
  readonly sourceProjectId: string;
  readonly destinationProjectId: string | null;
  readonly accepted: boolean;
  readonly noSnapshots: boolean;
  readonly createdAt: Date;
}

const { offerTransfer, endTransfer } = VOLUME_STATES.moves;
const { transfer: transferSnapshot } = SNAPSHOT_STATES.moves;

export type TransferSortKey = 'created_at' | 'updated_at' | 'id' | 'volume_id' | 'display_name';

const LISTING: Listing<TransferSortKey> = {
  table: 'transfers',
  sortColumns: {
    created_at: 'created_at',
    updated_at: 'updated_at',
    id: 'id',
    volume_id: 'volume_id',
    display_name: "coalesce(display_name, '')",
  },
  notFound: (id) => `Transfer ${id} could not be found.`,
};

/** The columns a transfer list may be filtered on (Cinder filters on the model's columns). */
export const TRANSFER_FILTERS = [
  'id',
  'volume_id',
  'display_name',
  'source_project_id',
  'destination_project_id',
  'accepted',
  'no_snapshots',
] as const;
export type TransferFilter = { readonly [K in (typeof TRANSFER_FILTERS)[number]]?: string | boolean };

/** Cinder's transfer secret: a salted HMAC of the key is kept, the key itself shown once. */
const cryptHash = (salt: string, key: string) => createHmac('sha1', salt).update(key).digest('hex');

/**
 * Volume transfers. Each step is one transaction: the volume's compare-and-swap and the transfer
 * row change together, so a volume is awaiting transfer exactly while it has a live transfer.
 */
export class TransferRepository {
  constructor(private readonly ds: DataSource) {}

  /** Offers an available volume; answers the transfer and its key (never stored). */
  async create(
    volume: VolumeRecord,
    name: string | null,
    noSnapshots: boolean,
  ): Promise<{ transfer: TransferRecord; authKey: string }> {
    const salt = randomBytes(4).toString('hex');
    const authKey = randomBytes(8).toString('hex');
    const transfer = await this.ds.transaction(async (tx) => {
      if (!(await compareAndSwap(tx, VOLUMES, volume.id, offerTransfer, {}))) {
        throw new InvalidStateError(
          `Invalid volume: Volume ${volume.id} status must be available to transfer.`,
        );
      }
      // Cinder's: its snapshots go with it, and only available ones can (the accept moves them)
      const [unready] = noSnapshots
        ? []
        : await tx.query(
            "SELECT id FROM snapshots WHERE volume_id = $1 AND NOT deleted AND status <> 'available' ORDER BY id LIMIT 1",
            [volume.id],
          );
      if (unready)
        throw new InvalidStateError(`Invalid snapshot: snapshot: ${unready.id} status must be available`);
      const [row] = await tx.query(
        `INSERT INTO transfers (id, volume_id, display_name, salt, crypt_hash, source_project_id, no_snapshots)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [randomUUID(), volume.id, name, salt, cryptHash(salt, authKey), volume.projectId, noSnapshots],
      );
      return toTransfer(row);
    });
    return { transfer, authKey };
  }

  /** A live transfer; `projectId` undefined: whoever holds its id (an acceptor, an admin). */
  async find(id: string, projectId: string | undefined): Promise<TransferRecord | undefined> {
    const rows = await this.ds.query(
      'SELECT * FROM transfers WHERE id = $1 AND NOT deleted AND ($2::varchar IS NULL OR source_project_id = $2)',
      [id, projectId ?? null],
    );
    return rows[0] ? toTransfer(rows[0]) : undefined;
  }

  /** One page of the live transfers offered by `projectId` (by every project when undefined). */
  async list(
    projectId: string | undefined,
    filter: TransferFilter,
    page: Page<TransferSortKey>,
  ): Promise<TransferRecord[]> {
    const scope: Array<readonly [string, unknown?]> = [['NOT deleted']];
    if (projectId !== undefined) scope.push(['source_project_id = ?', projectId]);
    const filters = TRANSFER_FILTERS.filter((column) => filter[column] !== undefined).map(
      (column) => [`${column}${column.endsWith('id') ? '::text' : ''} = ?`, filter[column]] as const,
    );
    const rows = await keysetPage(this.ds, LISTING, { scope, filters }, page);
    return rows.map(toTransfer);
  }

  /** Withdraws the offer: the transfer is gone and the volume available again. */
  async cancel(transfer: TransferRecord): Promise<void> {
    await this.ds.transaction(async (tx) => {
      const rows = await updateReturning(
        tx,
        'UPDATE transfers SET deleted = true, deleted_at = now(), updated_at = now() WHERE id = $1 AND NOT deleted RETURNING id',
        [transfer.id],
      );
      if (rows.length === 0) throw new NotFoundError(`Transfer ${transfer.id} could not be found.`);
      await compareAndSwap(tx, VOLUMES, transfer.volumeId, endTransfer, {});
    });
  }

  /**
   * Hands the volume to the acceptor's project if the key matches and the acceptor's quota takes
   * it, and unless the transfer is `no_snapshots` its snapshots too (checked under the project's
   * quota lock, in the same transaction: refused, nothing moves).
   */
  async accept(
    id: string,
    authKey: string,
    acceptor: { readonly projectId: string; readonly userId: string },
    defaults: QuotaLimits,
  ): Promise<{ transfer: TransferRecord; volume: VolumeRecord }> {
    return this.ds.transaction(async (tx) => {
      const [row] = await tx.query('SELECT * FROM transfers WHERE id = $1 AND NOT deleted FOR UPDATE', [id]);
      if (!row) throw new NotFoundError(`Transfer ${id} could not be found.`);
      if (cryptHash(String(row.salt), authKey) !== String(row.crypt_hash)) {
        throw new InvalidInputError(`Invalid auth key: Attempt to transfer ${id} with invalid auth key.`);
      }
      const volumeId = String(row.volume_id);
      // the volume's row before the quota lock, as create_snapshot_within_quota takes them
      const [volumeRow] = await tx.query('SELECT size, volume_type FROM volumes WHERE id = $1 FOR UPDATE', [
        volumeId,
      ]);
      const size = Number(volumeRow?.size ?? 0);
      const type = (volumeRow?.volume_type as string | null | undefined) ?? null;
      const check = (more: { volumes: number; snapshots: number; gigabytes: number }, checkedSize: number) =>
        tx.query('SELECT check_volume_quota($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
          acceptor.projectId,
          type,
          more.volumes,
          more.snapshots,
          more.gigabytes,
          defaults.volumes,
          defaults.snapshots,
          defaults.gigabytes,
          checkedSize,
          defaults.per_volume_gigabytes,
        ]);
      try {
        await check({ volumes: 1, snapshots: 0, gigabytes: size }, size);
      } catch (error) {
        throw quotaRefusal(error, 'volumes', size, size);
      }
      const moved = await compareAndSwap(tx, VOLUMES, volumeId, endTransfer, {
        projectId: acceptor.projectId,
        userId: acceptor.userId,
      });
      if (!moved) throw new InvalidStateError(`Invalid volume: volume ${volumeId} is not awaiting transfer.`);
      if (row.no_snapshots !== true)
        await moveSnapshots(tx, id, volumeId, acceptor, (more) => check(more, 0));
      const [done] = await updateReturning(
        tx,
        `UPDATE transfers SET accepted = true, destination_project_id = $2, deleted = true, deleted_at = now(),
                              updated_at = now()
          WHERE id = $1 RETURNING *`,
        [id, acceptor.projectId],
      );
      return { transfer: toTransfer(done as Row), volume: toVolume(moved) };
    });
  }
}

/**
 * Cinder's transfer of a volume's snapshots: the acceptor's quota must take them (`snapshots`,
 * and their sizes in `gigabytes`, overall and of the volume's type), counted after the volume,
 * which has moved already, as Cinder reserves them after it; then each one, still `available`,
 * moves to the acceptor.
 */
async function moveSnapshots(
  tx: EntityManager,
  transferId: string,
  volumeId: string,
  acceptor: { readonly projectId: string; readonly userId: string },
  check: (more: { volumes: number; snapshots: number; gigabytes: number }) => Promise<unknown>,
): Promise<void> {
  const snapshots: Row[] = await tx.query(
    'SELECT id, volume_size FROM snapshots WHERE volume_id = $1 AND NOT deleted ORDER BY id FOR UPDATE',
    [volumeId],
  );
  if (snapshots.length === 0) return;
  const gigabytes = snapshots.reduce((sum, s) => sum + Number(s.volume_size), 0);
  try {
    await check({ volumes: 0, snapshots: snapshots.length, gigabytes });
  } catch (error) {
    throw quotaRefusal(error, 'snapshots', gigabytes, 0);
  }
  for (const snapshot of snapshots) {
    const changes = { projectId: acceptor.projectId, userId: acceptor.userId };
    if (!(await compareAndSwap(tx, SNAPSHOTS, String(snapshot.id), transferSnapshot, changes))) {
      throw new InvalidStateError(
        `Invalid snapshot: Transfer ${transferId}: Snapshot ${String(snapshot.id)} is not in the expected available state.`,
      );
    }
  }
}

function toTransfer(r: Row): TransferRecord {
  return {
    id: String(r.id),
    volumeId: String(r.volume_id),
    name: (r.display_name as string | null) ?? null,
    sourceProjectId: String(r.source_project_id),
    destinationProjectId: (r.destination_project_id as string | null) ?? null,
    accepted: r.accepted === true,
    noSnapshots: r.no_snapshots === true,
    createdAt: new Date(String(r.created_at)),
  };
}
