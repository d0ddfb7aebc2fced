import { randomUUID } from 'node:crypto';
import { BasaltError, ConflictError, NotFoundError } from '@basalt/errors';
import type { DataSource, EntityManager } from 'typeorm';

export const VOLUME_STATUSES = [
  'creating',
  'available',
  'attaching',
  'in-use',
  'detaching',
  'deleting',
  'error',
  'error_deleting',
  'extending',
  'error_extending',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];
export type AttachStatus = 'detached' | 'attaching' | 'attached' | 'detaching';

export interface VolumeRecord {
  readonly id: string;
  readonly seq: number;
  readonly backendName: string;
  readonly size: number;
  readonly status: VolumeStatus;
  readonly statusReason: string | null;
  readonly attachStatus: AttachStatus;
  readonly host: string | null;
  readonly availabilityZone: string;
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly volumeType: string | null;
  readonly providerLocation: string | null;
  /** `CHAP <user> <password>`: a secret, never logged or shown to users. */
  readonly providerAuth: string | null;
  /** While `extending`: the size the extend grows the volume to. */
  readonly extendTo: number | null;
  readonly scheduledAt: Date | null;
  readonly launchedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Columns a transition may set besides `status`. */
export interface VolumeChanges {
  readonly size?: number;
  readonly statusReason?: string | null;
  readonly attachStatus?: AttachStatus;
  readonly host?: string | null;
  readonly providerLocation?: string | null;
  readonly providerAuth?: string | null;
  readonly extendTo?: number | null;
  readonly scheduledAt?: Date;
  readonly launchedAt?: Date;
  readonly displayName?: string | null;
  readonly displayDescription?: string | null;
}

const COLUMNS: Record<keyof VolumeChanges, string> = {
  size: 'size',
  statusReason: 'status_reason',
  attachStatus: 'attach_status',
  host: 'host',
  providerLocation: 'provider_location',
  providerAuth: 'provider_auth',
  extendTo: 'extend_to',
  scheduledAt: 'scheduled_at',
  launchedAt: 'launched_at',
  displayName: 'display_name',
  displayDescription: 'display_description',
};

export class QuotaExceededError extends BasaltError {}

/** A volume a host took up to create or delete, with its iSCSI target number (null without one). */
export interface VolumeClaim {
  readonly volume: VolumeRecord;
  readonly targetNum: number | null;
}

export interface NewVolume {
  readonly size: number;
  readonly projectId: string;
  readonly userId: string;
  readonly availabilityZone: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly volumeType: string | null;
}

export interface VolumeFilter {
  readonly projectId?: string;
  readonly status?: string;
  readonly name?: string;
  readonly host?: string;
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

export interface Page {
  readonly limit: number;
  readonly marker?: string;
  readonly sort: ReadonlyArray<{ key: SortKey; dir: 'asc' | 'desc' }>;
}

/** Renders nova's `volume_name_template`: `%0Nx`/`%x`/`%d` take the sequence number, `%s` the id. */
/**
 * The volumes table. Every status change is a compare-and-swap: `UPDATE … WHERE status IN (…)`
 * and the row count says whether this caller won; nothing reads a status and then writes it.
 */
export class VolumeRepository {
  constructor(private readonly ds: DataSource) {}

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
        'SELECT * FROM create_volume_within_quota($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
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
          nameTemplate,
        ],
      );
      return toVolume(row);
    } catch (error) {
      throw quotaRefusal(error, input.size);
    }
  }

  /** Starts an extend (available → extending) if the project's gigabytes quota takes the growth. */
  async beginExtendWithinQuota(volume: VolumeRecord, newSize: number, defaults: QuotaLimits): Promise<void> {
    const growth = newSize - volume.size;
    await this.ds.transaction(async (tx) => {
      try {
        await tx.query('SELECT check_volume_quota($1, 0, $2, $3, $4)', [
          volume.projectId,
          growth,
          defaults.volumes,
          defaults.gigabytes,
        ]);
      } catch (error) {
        throw quotaRefusal(error, growth);
      }
      const [row] = await updateReturning(
        tx,
        `UPDATE volumes SET status = 'extending', extend_to = $2, updated_at = now()
          WHERE id = $1 AND NOT deleted AND status = 'available' RETURNING id`,
        [volume.id, newSize],
      );
      if (!row) {
        throw new ConflictError(
          `Invalid volume: Volume ${volume.id} status must be available to extend, but current status is: ${volume.status}.`,
        );
      }
    });
  }

  async find(id: string): Promise<VolumeRecord | undefined> {
    const rows = await this.ds.query('SELECT * FROM volumes WHERE id = $1 AND NOT deleted', [id]);
    return rows[0] ? toVolume(rows[0]) : undefined;
  }

  async get(id: string): Promise<VolumeRecord> {
    const volume = await this.find(id);
    if (!volume) throw new NotFoundError(`Volume ${id} could not be found.`, { data: { volume_id: id } });
    return volume;
  }

  /**
   * Moves a live volume from one of `from` to `to`, setting `changes` in the same statement.
   * Returns the updated row, or undefined when the volume was not in any of `from`.
   */
  async transition(
    id: string,
    from: readonly VolumeStatus[],
    to: VolumeStatus,
    changes: VolumeChanges = {},
  ): Promise<VolumeRecord | undefined> {
    const sets = ['status = $3', 'updated_at = now()'];
    const params: unknown[] = [id, [...from], to];
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      params.push(value);
      sets.push(`${COLUMNS[key as keyof VolumeChanges]} = $${params.length}`);
    }
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volumes SET ${sets.join(', ')} WHERE id = $1 AND NOT deleted AND status = ANY($2) RETURNING *`,
      params,
    );
    return row ? toVolume(row) : undefined;
  }

  /**
   * The scheduler's decision for many volumes in one statement: each volume goes to its host if
   * it is still `creating` and no scheduler placed it before. Answers, per placement, whether it
   * took.
   */
  async placeOnHosts(placements: readonly { id: string; host: string }[]): Promise<boolean[]> {
    const rows = await updateReturning(
      this.ds,
      `UPDATE volumes v SET host = p.host, scheduled_at = now(), updated_at = now()
         FROM unnest($1::uuid[], $2::varchar[]) AS p(id, host)
        WHERE v.id = p.id AND NOT v.deleted AND v.status = 'creating' AND v.host IS NULL
        RETURNING v.id`,
      [placements.map((p) => p.id), placements.map((p) => p.host)],
    );
    return tookPart(
      placements.map((p) => p.id),
      rows,
    );
  }

  /** No host can take the volume: `error` with the reason, unless a scheduler placed it already. */
  async failUnplaced(id: string, reason: string): Promise<boolean> {
    const rows = await updateReturning(
      this.ds,
      `UPDATE volumes SET status = 'error', status_reason = $2, updated_at = now()
        WHERE id = $1 AND NOT deleted AND status = 'creating' AND host IS NULL RETURNING id`,
      [id, reason],
    );
    return rows.length > 0;
  }

  /**
   * A volume host's first step of many creates, in one statement: each volume that is `creating`
   * on `host` gets the CHAP credentials offered unless it has some (a retried create keeps the
   * first ones) and its iSCSI target number (the same one again on a retry). Volumes not being
   * created on this host answer undefined.
   */
  async claimForCreate(
    host: string,
    claims: readonly { id: string; providerAuth: string }[],
    maxTargets: number,
  ): Promise<Array<VolumeClaim | undefined>> {
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `WITH claimed AS (
         UPDATE volumes v SET provider_auth = coalesce(v.provider_auth, c.auth), updated_at = now()
           FROM unnest($2::uuid[], $3::text[]) AS c(id, auth)
          WHERE v.id = c.id AND v.host = $1 AND NOT v.deleted AND v.status = 'creating'
          RETURNING v.*)
       SELECT claimed.*, allocate_iscsi_target($1, claimed.id, $4) AS target_num FROM claimed`,
      [host, claims.map((c) => c.id), claims.map((c) => c.providerAuth), maxTargets],
    );
    return claimsInOrder(
      claims.map((c) => c.id),
      rows,
    );
  }

  /** The last step of many creates: `creating` → `available` with where each is exported. */
  async markCreated(created: readonly { id: string; providerLocation: string }[]): Promise<boolean[]> {
    const rows = await updateReturning(
      this.ds,
      `UPDATE volumes v SET status = 'available', provider_location = c.location, status_reason = NULL,
                            launched_at = now(), updated_at = now()
         FROM unnest($1::uuid[], $2::text[]) AS c(id, location)
        WHERE v.id = c.id AND NOT v.deleted AND v.status = 'creating'
        RETURNING v.id`,
      [created.map((c) => c.id), created.map((c) => c.providerLocation)],
    );
    return tookPart(
      created.map((c) => c.id),
      rows,
    );
  }

  /**
   * A volume host's first step of many deletes, in one statement: each volume `deleting` on
   * `host`, with its iSCSI target number (null when it never got one). Volumes not being deleted
   * on this host answer undefined.
   */
  async claimForDelete(host: string, ids: readonly string[]): Promise<Array<VolumeClaim | undefined>> {
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `SELECT v.*, t.target_num FROM volumes v LEFT JOIN iscsi_targets t ON t.volume_id = v.id
        WHERE v.id = ANY($2::uuid[]) AND v.host = $1 AND NOT v.deleted AND v.status = 'deleting'`,
      [host, ids],
    );
    return claimsInOrder(ids, rows);
  }

  /**
   * The last step of many deletes: each volume still `deleting` is marked deleted (the row stays
   * for history), its target number freed and its attachments closed, all in one statement.
   */
  async markDeleted(ids: readonly string[]): Promise<boolean[]> {
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `WITH gone AS (
         UPDATE volumes SET deleted = true, deleted_at = now(), updated_at = now(), status = 'deleted'
          WHERE id = ANY($1::uuid[]) AND NOT deleted AND status = 'deleting'
          RETURNING id),
       freed AS (DELETE FROM iscsi_targets WHERE volume_id IN (SELECT id FROM gone)),
       closed AS (
         UPDATE volume_attachments SET deleted = true, deleted_at = now()
          WHERE volume_id IN (SELECT id FROM gone) AND NOT deleted)
       SELECT id FROM gone`,
      [ids],
    );
    return tookPart(ids, rows);
  }

  /** Like `transition`, but a lost race is an error naming the state the volume is really in. */
  async transitionOrThrow(
    id: string,
    from: readonly VolumeStatus[],
    to: VolumeStatus,
    changes: VolumeChanges = {},
  ): Promise<VolumeRecord> {
    const updated = await this.transition(id, from, to, changes);
    if (updated) return updated;
    const current = await this.get(id);
    throw new ConflictError(
      `Invalid volume: Volume ${id} status must be ${from.join(' or ')}, but current status is: ${current.status}.`,
      { data: { volume_id: id, status: current.status } },
    );
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
    if (!row) throw new NotFoundError(`Volume ${id} could not be found.`, { data: { volume_id: id } });
    return toVolume(row);
  }

  /** The final step of a delete: the row stays for history, marked deleted. */
  async softDelete(id: string, from: readonly VolumeStatus[]): Promise<boolean> {
    const rows = await updateReturning(
      this.ds,
      `UPDATE volumes SET deleted = true, deleted_at = now(), updated_at = now(), status = 'deleted'
        WHERE id = $1 AND NOT deleted AND status = ANY($2) RETURNING id`,
      [id, [...from]],
    );
    return rows.length > 0;
  }

  async list(filter: VolumeFilter, page: Page): Promise<VolumeRecord[]> {
    const where = ['NOT deleted'];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.projectId !== undefined) add('project_id = ?', filter.projectId);
    if (filter.status !== undefined) add('status = ?', filter.status);
    if (filter.name !== undefined) add('display_name = ?', filter.name);
    if (filter.host !== undefined) add('host = ?', filter.host);
    const order = [...page.sort, { key: 'id' as const, dir: 'asc' as const }];
    if (page.marker !== undefined) {
      const marker = await this.find(page.marker);
      if (!marker || (filter.projectId !== undefined && marker.projectId !== filter.projectId)) {
        throw new NotFoundError(`Marker ${page.marker} could not be found.`);
      }
      // keyset pagination: rows strictly after the marker in the requested order, compared with
      // the marker row's own values in SQL (timestamps keep their microseconds that way)
      params.push(marker.id);
      const markerParam = `$${params.length}`;
      const of = (key: SortKey) => `(SELECT ${SORT_COLUMNS[key]} FROM volumes WHERE id = ${markerParam})`;
      const clauses = order.map((s, i) => {
        const equal = order.slice(0, i).map((p) => `${SORT_COLUMNS[p.key]} = ${of(p.key)}`);
        const after = `${SORT_COLUMNS[s.key]} ${s.dir === 'asc' ? '>' : '<'} ${of(s.key)}`;
        return `(${[...equal, after].join(' AND ')})`;
      });
      where.push(`(${clauses.join(' OR ')})`);
    }
    params.push(page.limit);
    const orderBy = order.map((s) => `${SORT_COLUMNS[s.key]} ${s.dir.toUpperCase()}`).join(', ');
    const rows = await this.ds.query(
      `SELECT * FROM volumes WHERE ${where.join(' AND ')} ORDER BY ${orderBy} LIMIT $${params.length}`,
      params,
    );
    return rows.map(toVolume);
  }

  /** Volumes being created that no scheduler placed, unchanged for `idleForSec`. */
  async unplaced(idleForSec: number): Promise<VolumeRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM volumes WHERE host IS NULL AND NOT deleted AND status = 'creating'
          AND updated_at <= now() - make_interval(secs => $1) ORDER BY updated_at`,
      [idleForSec],
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
}

export interface QuotaLimits {
  readonly volumes: number;
  readonly gigabytes: number;
}

export interface QuotaUsage {
  readonly volumes: number;
  readonly gigabytes: number;
}

/** The SQLSTATE check_volume_quota raises when the quota refuses. */
const QUOTA_REFUSED = 'BQ001';

/** A refusal by check_volume_quota in Cinder's words; any other error as it was. */
function quotaRefusal(error: unknown, requestedGigabytes: number): unknown {
  const refused = error as { code?: string; detail?: string };
  if (refused.code !== QUOTA_REFUSED) return error;
  const {
    resource,
    limit,
    in_use: inUse,
  } = JSON.parse(refused.detail ?? '{}') as { resource: QuotaResource; limit: number; in_use: number };
  const data = { resource, limit, in_use: inUse };
  return resource === 'volumes'
    ? new QuotaExceededError(
        `VolumeLimitExceeded: Maximum number of volumes allowed (${limit}) exceeded for quota 'volumes'.`,
        { data },
      )
    : new QuotaExceededError(
        `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested ${requestedGigabytes}G, quota is ${limit}G and ${inUse}G has been consumed.`,
        { data },
      );
}

export const QUOTA_RESOURCES = ['volumes', 'gigabytes'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

/** Per-project hard limits; a project without its own row gets the configured defaults. */
export class QuotaRepository {
  constructor(private readonly ds: DataSource) {}

  async limits(projectId: string, defaults: QuotaLimits): Promise<QuotaLimits> {
    const rows: Array<{ resource: QuotaResource; hard_limit: number }> = await this.ds.query(
      'SELECT resource, hard_limit FROM quotas WHERE project_id = $1',
      [projectId],
    );
    const limits = { ...defaults };
    for (const row of rows) limits[row.resource] = Number(row.hard_limit);
    return limits;
  }

  async set(projectId: string, values: Partial<QuotaLimits>): Promise<void> {
    for (const [resource, limit] of Object.entries(values)) {
      await this.ds.query(
        `INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)
         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = EXCLUDED.hard_limit, updated_at = now()`,
        [projectId, resource, limit],
      );
    }
  }

  /** Back to the configured defaults. */
  async reset(projectId: string): Promise<void> {
    await this.ds.query('DELETE FROM quotas WHERE project_id = $1', [projectId]);
  }

  /** What the project uses now, as os-quota-sets shows it (the check itself is check_volume_quota). */
  async usage(projectId: string): Promise<QuotaUsage> {
    const [row] = await this.ds.query(
      'SELECT count(*)::int AS volumes, coalesce(sum(size), 0)::int AS gigabytes FROM volumes WHERE project_id = $1 AND NOT deleted',
      [projectId],
    );
    return { volumes: Number(row.volumes), gigabytes: Number(row.gigabytes) };
  }
}

/** TypeORM answers an UPDATE or DELETE with `[rows, rowCount]`; this returns just the rows. */
export async function updateReturning(
  db: DataSource | EntityManager,
  sql: string,
  params: unknown[],
): Promise<Array<Record<string, unknown>>> {
  const result = await db.query(sql, params);
  return Array.isArray(result[0]) ? result[0] : result;
}

/**
 * Each of `ids` with its row among `rows` (undefined if none): a statement over many volumes
 * answers in the order it was asked, whatever order its rows came in.
 */
function rowsInOrder(
  ids: readonly string[],
  rows: ReadonlyArray<Record<string, unknown>>,
): Array<Record<string, unknown> | undefined> {
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  return ids.map((id) => byId.get(id));
}

/** Whether each of `ids` is among the rows a statement changed. */
function tookPart(ids: readonly string[], rows: ReadonlyArray<Record<string, unknown>>): boolean[] {
  return rowsInOrder(ids, rows).map((row) => row !== undefined);
}

/** Claimed volumes (rows with `target_num`) in the order of `ids`; undefined for those not claimed. */
function claimsInOrder(
  ids: readonly string[],
  rows: ReadonlyArray<Record<string, unknown>>,
): Array<VolumeClaim | undefined> {
  return rowsInOrder(ids, rows).map(
    (row) =>
      row && { volume: toVolume(row), targetNum: row.target_num === null ? null : Number(row.target_num) },
  );
}

function date(value: unknown): Date | null {
  return value === null || value === undefined ? null : new Date(value as string);
}

function toVolume(r: Record<string, unknown>): VolumeRecord {
  return {
    id: String(r.id),
    seq: Number(r.seq),
    backendName: String(r.backend_name),
    size: Number(r.size),
    status: r.status as VolumeStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    attachStatus: r.attach_status as AttachStatus,
    host: (r.host as string | null) ?? null,
    availabilityZone: String(r.availability_zone),
    projectId: String(r.project_id),
    userId: String(r.user_id),
    displayName: (r.display_name as string | null) ?? null,
    displayDescription: (r.display_description as string | null) ?? null,
    volumeType: (r.volume_type as string | null) ?? null,
    providerLocation: (r.provider_location as string | null) ?? null,
    providerAuth: (r.provider_auth as string | null) ?? null,
    extendTo: r.extend_to === null || r.extend_to === undefined ? null : Number(r.extend_to),
    scheduledAt: date(r.scheduled_at),
    launchedAt: date(r.launched_at),
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
  };
}
