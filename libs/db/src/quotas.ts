import { QuotaExceededError } from '@basalt/errors';
import type { DataSource } from 'typeorm';

export const QUOTA_RESOURCES = [
  'volumes',
  'snapshots',
  'gigabytes',
  'backups',
  'backup_gigabytes',
  'per_volume_gigabytes',
  'groups',
] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

/** Hard limits by resource, as Cinder's quota sets name them (-1: unlimited). */
export type QuotaLimits = Readonly<Record<QuotaResource, number>>;

/** The resources counted per volume type, as `<resource>_<type name>` (Cinder's VolumeTypeResource). */
export const PER_TYPE_RESOURCES = ['volumes', 'gigabytes', 'snapshots'] as const;

/** A whole quota set: the resources above and, for every volume type, its per-type ones. */
export type QuotaSet = Readonly<Record<string, number>>;

/** What a project uses of each resource of its quota set. */
export type QuotaUsage = QuotaSet;

/** The SQLSTATE check_volume_quota (and create_snapshot_within_quota) raises when the quota refuses. */
const QUOTA_REFUSED = 'BQ001';

/**
 * A refusal by check_volume_quota in Cinder's words (quota_utils.process_reserve_over_quota); any
 * other error as it was. `counted` is what the request counts as Cinder names it: a count limit
 * of the other kind refused (a retype's `snapshots_<type>`, counted as `volumes`) is Cinder's
 * UnexpectedOverQuota.
 */
export function quotaRefusal(
  error: unknown,
  counted: 'volumes' | 'snapshots',
  requestedGigabytes: number,
  volumeSize: number,
): unknown {
  const refused = error as { code?: string; detail?: string };
  if (refused.code !== QUOTA_REFUSED) return error;
  const {
    resource,
    limit,
    in_use: inUse,
  } = JSON.parse(refused.detail ?? '{}') as { resource: string; limit: number; in_use: number };
  const data = { resource, limit, in_use: inUse };
  // a per-type resource is refused in the words of its kind, naming itself
  const kind = resource.split('_')[0];
  if (resource === 'per_volume_gigabytes') {
    return new QuotaExceededError(
      `VolumeSizeExceedsLimit: Requested volume size ${volumeSize}G is larger than maximum allowed limit ${limit}G.`,
      { data },
    );
  }
  if (kind === 'gigabytes') {
    return new QuotaExceededError(
      `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed ${resource} quota. Requested ${requestedGigabytes}G, quota is ${limit}G and ${inUse}G has been consumed.`,
      { data },
    );
  }
  if (kind !== counted) {
    return new QuotaExceededError(`UnexpectedOverQuota: Unexpected over quota on ${resource}.`, { data });
  }
  return kind === 'snapshots'
    ? new QuotaExceededError(
        `SnapshotLimitExceeded: Maximum number of snapshots allowed (${limit}) exceeded`,
        {
          data,
        },
      )
    : new QuotaExceededError(
        `VolumeLimitExceeded: Maximum number of volumes allowed (${limit}) exceeded for quota '${resource}'.`,
        { data },
      );
}

/**
 * Per-project hard limits. A project without its own limit for a resource gets the `default` quota
 * class's, and without that the configured default (Cinder's order); a per-type resource's
 * configured default is -1.
 */
export class QuotaRepository {
  constructor(private readonly ds: DataSource) {}

  async limits(projectId: string, defaults: QuotaLimits): Promise<QuotaSet> {
    const rows: LimitRow[] = await this.ds.query(
      'SELECT resource, hard_limit FROM quotas WHERE project_id = $1',
      [projectId],
    );
    return overlay(await this.classLimits('default', defaults), rows);
  }

  /** A quota class's limits over `defaults`; the `default` class is what projects fall back to. */
  async classLimits(className: string, defaults: QuotaLimits): Promise<QuotaSet> {
    const rows: LimitRow[] = await this.ds.query(
      'SELECT resource, hard_limit FROM quota_classes WHERE class_name = $1',
      [className],
    );
    return overlay(await this.withTypes(defaults), rows);
  }

  /** Every resource a quota set holds now: the fixed ones and those of each live volume type. */
  async resources(): Promise<string[]> {
    return Object.keys(await this.withTypes(undefined));
  }

  async set(projectId: string, values: QuotaSet): Promise<void> {
    await this.upsert('quotas', 'project_id', projectId, values);
  }

  async setClass(className: string, values: QuotaSet): Promise<void> {
    await this.upsert('quota_classes', 'class_name', className, values);
  }

  /** Back to the class's and the configured defaults. */
  async reset(projectId: string): Promise<void> {
    await this.ds.query('DELETE FROM quotas WHERE project_id = $1', [projectId]);
  }

  /** What the project uses now, counted as check_volume_quota counts it (quota_usage). */
  async usage(projectId: string): Promise<QuotaUsage> {
    const rows: Array<{ resource: string; in_use: number }> = await this.ds.query(
      'SELECT resource, in_use FROM quota_usage($1)',
      [projectId],
    );
    const used: Record<string, number> = {
      backups: 0,
      backup_gigabytes: 0,
      per_volume_gigabytes: 0,
      groups: 0,
    };
    for (const row of rows) used[row.resource] = Number(row.in_use);
    return used;
  }

  /** `defaults` (0 for each, without) and -1 for every per-type resource of the live volume types. */
  private async withTypes(defaults: QuotaLimits | undefined): Promise<Record<string, number>> {
    const types: Array<{ name: string }> = await this.ds.query(
      'SELECT name FROM volume_types WHERE NOT deleted ORDER BY name',
    );
    const set: Record<string, number> = Object.fromEntries(
      QUOTA_RESOURCES.map((r) => [r, defaults?.[r] ?? 0]),
    );
    for (const { name } of types) for (const r of PER_TYPE_RESOURCES) set[`${r}_${name}`] = -1;
    return set;
  }

  private async upsert(
    table: 'quotas' | 'quota_classes',
    keyColumn: 'project_id' | 'class_name',
    key: string,
    values: QuotaSet,
  ): Promise<void> {
    const entries = Object.entries(values);
    if (entries.length === 0) return;
    await this.ds.query(
      `INSERT INTO ${table} (${keyColumn}, resource, hard_limit)
       SELECT $1, r, l FROM unnest($2::varchar[], $3::int[]) AS v(r, l)
       ON CONFLICT (${keyColumn}, resource) DO UPDATE SET hard_limit = EXCLUDED.hard_limit, updated_at = now()`,
      [key, entries.map(([r]) => r), entries.map(([, l]) => l)],
    );
  }
}

type LimitRow = { resource: string; hard_limit: number };

/** `base` with the rows' limits over it; rows of resources the set does not hold (a deleted type's) are left out. */
function overlay(base: Record<string, number>, rows: readonly LimitRow[]): QuotaSet {
  const limits = { ...base };
  for (const row of rows) if (row.resource in limits) limits[row.resource] = Number(row.hard_limit);
  return limits;
}
