import { closeAttachments } from './attachments';
import {
  compareAndSwap,
  compareAndSwapEach,
  type Db,
  Params,
  type Row,
  rowsInOrder,
  tookPart,
  tracingMoves,
} from './sql';
import { allocateTarget, freeTargetsOf } from './targets';
import { toClaim, VOLUMES, type VolumeClaim } from './volume-records';
import { VOLUME_STATES } from './volume-states';

/*
 * The lifecycle steps a burst of requests shares: each takes many volumes in one statement (the
 * Batcher's group commit) and answers per volume, in the order asked, whether it took.
 */

const { place, failCreate, claimCreate, finishCreate, finishDelete } = VOLUME_STATES.moves;

/**
 * The scheduler's decision for many volumes: each volume goes to its host if it is still
 * `creating` and no scheduler placed it before.
 */
export function placeOnHosts(
  db: Db,
  placements: readonly { id: string; host: string; pool?: string }[],
): Promise<boolean[]> {
  return compareAndSwapEach(
    db,
    VOLUMES,
    place,
    placements,
    [
      { column: 'host', type: 'varchar', of: (x) => x.host },
      { column: 'pool', type: 'varchar', of: (x) => x.pool ?? null },
    ],
    {
      set: ['scheduled_at = now()'],
      where: ['t.host IS NULL'],
    },
  );
}

/** No host can take the volume: `error` with the reason and the failing request, unless a scheduler placed it already. */
export async function failUnplaced(db: Db, id: string, reason: string, requestId: string): Promise<boolean> {
  const changes = { statusReason: reason, statusRequestId: requestId };
  return (await compareAndSwap(db, VOLUMES, id, failCreate, changes, ['host IS NULL'])) !== undefined;
}

/**
 * A volume host's first step of many creates: each volume that is `creating` on `host` gets the
 * CHAP credentials offered unless it has some (a retried create keeps the first ones) and its
 * iSCSI target number (the same one again on a retry). Volumes not being created on this host
 * answer undefined.
 */
export async function claimForCreate(
  db: Db,
  host: string,
  claims: readonly { id: string; providerAuth: string }[],
  maxTargets: number,
): Promise<Array<VolumeClaim | undefined>> {
  const p = new Params();
  const h = p.add(host);
  const ids = claims.map((c) => c.id);
  const rows: Row[] = await tracingMoves(
    claimCreate,
    ids,
    undefined,
    () =>
      db.query(
        `WITH claimed AS (
       UPDATE volumes v SET status = ${p.add(claimCreate.to)}, provider_auth = coalesce(v.provider_auth, c.auth), updated_at = now()
         FROM unnest(${p.add(claims.map((c) => c.id))}::uuid[], ${p.add(claims.map((c) => c.providerAuth))}::text[]) AS c(id, auth)
        WHERE v.id = c.id AND v.host = ${h} AND NOT v.deleted AND v.status = ANY(${p.add(claimCreate.from)})
        RETURNING v.*)
     SELECT claimed.*, ${allocateTarget(h, 'claimed.id', p.add(maxTargets))} AS target_num FROM claimed`,
        p.values,
      ),
    (claimed) => tookPart(ids, claimed),
  );
  return rowsInOrder(ids, rows).map((row) => row && toClaim(row));
}

/** The last step of many creates: `creating` → `available` with where each is exported. */
export function markCreated(
  db: Db,
  created: readonly { id: string; providerLocation: string }[],
): Promise<boolean[]> {
  return compareAndSwapEach(
    db,
    VOLUMES,
    finishCreate,
    created,
    [{ column: 'provider_location', type: 'text', of: (c) => c.providerLocation }],
    { set: ['status_reason = NULL', 'launched_at = now()'] },
  );
}

/**
 * A volume host's first step of many deletes: each volume `deleting` on `host`, with its iSCSI
 * target number (null when it never got one). Volumes not being deleted on this host answer
 * undefined.
 */
export async function claimForDelete(
  db: Db,
  host: string,
  ids: readonly string[],
): Promise<Array<VolumeClaim | undefined>> {
  const rows: Row[] = await db.query(
    `SELECT v.*, t.target_num FROM volumes v LEFT JOIN iscsi_targets t ON t.volume_id = v.id
      WHERE v.id = ANY($2::uuid[]) AND v.host = $1 AND NOT v.deleted AND v.status = ANY($3)`,
    [host, ids, finishDelete.from],
  );
  return rowsInOrder(ids, rows).map((row) => row && toClaim(row));
}

/**
 * The last step of many deletes: each volume still `deleting` is marked deleted (the row stays
 * for history), its target number freed and its attachments closed, all in one statement; the
 * targets' and the attachments' repositories own the parts on their tables.
 */
export async function markDeleted(db: Db, ids: readonly string[]): Promise<boolean[]> {
  const p = new Params();
  const rows: Row[] = await tracingMoves(
    finishDelete,
    ids,
    undefined,
    () =>
      db.query(
        `WITH gone AS (
       UPDATE volumes SET deleted = true, deleted_at = now(), updated_at = now(), status = ${p.add(finishDelete.to)}
        WHERE id = ANY(${p.add(ids)}::uuid[]) AND NOT deleted AND status = ANY(${p.add(finishDelete.from)})
        RETURNING id),
     freed AS (${freeTargetsOf('SELECT id FROM gone')}),
     closed AS (${closeAttachments('volume_id IN (SELECT id FROM gone)', p)})
     SELECT id FROM gone`,
        p.values,
      ),
    (gone) => tookPart(ids, gone),
  );
  return tookPart(ids, rows);
}
