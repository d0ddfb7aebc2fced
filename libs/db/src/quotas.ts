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

/** What a project uses of each resource. */
export type QuotaUsage = Readonly<Record<QuotaResource, number>>;

/** The SQLSTATE check_volume_quota (and create_snapshot_within_quota) raises when the quota refuses. */
const QUOTA_REFUSED = 'BQ001';

/** A refusal by check_volume_quota in Cinder's words; any other error as it was. */
export function quotaRefusal(error: unknown, requestedGigabytes: number, volumeSize: number): unknown {
  const refused = error as { code?: string; detail?: string };
  if (refused.code !== QUOTA_REFUSED) return error;
  const {
    resource,
    limit,
    in_use: inUse,
  } = JSON.parse(refused.detail ?? '{}') as { resource: QuotaResource; limit: number; in_use: number };
  const data = { resource, limit, in_use: inUse };
  if (resource === 'per_volume_gigabytes') {
    return new QuotaExceededError(
      `VolumeSizeExceedsLimit: Requested volume size ${volumeSize}G is larger than maximum allowed limit ${limit}G.`,
      { data },
    );
  }
  if (resource === 'snapshots') {
    return new QuotaExceededError(
      `SnapshotLimitExceeded: Maximum number of snapshots allowed (${limit}) exceeded.`,
      { data },
    );
  }
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

/**
 * Per-project hard limits. A project without its own limit for a resource gets the `default` quota
 * class's, and without that the configured default (Cinder's order).
 */
export class QuotaRepository {
  constructor(private readonly ds: DataSource) {}

  async limits(projectId: string, defaults: QuotaLimits): Promise<QuotaLimits> {
    const rows: Array<{ resource: QuotaResource; hard_limit: number }> = await this.ds.query(
      'SELECT resource, hard_limit FROM quotas WHERE project_id = $1',
      [projectId],
    );
    return overlay(await this.classLimits('default', defaults), rows);
  }

  /** A quota class's limits over `defaults`; the `default` class is what projects fall back to. */
  async classLimits(className: string, defaults: QuotaLimits): Promise<QuotaLimits> {
    const rows: Array<{ resource: QuotaResource; hard_limit: number }> = await this.ds.query(
      'SELECT resource, hard_limit FROM quota_classes WHERE class_name = $1',
      [className],
    );
    return overlay(defaults, rows);
  }

  async set(projectId: string, values: Partial<QuotaLimits>): Promise<void> {
    await this.upsert('quotas', 'project_id', projectId, values);
  }

  async setClass(className: string, values: Partial<QuotaLimits>): Promise<void> {
    await this.upsert('quota_classes', 'class_name', className, values);
  }

  /** Back to the class's and the configured defaults. */
  async reset(projectId: string): Promise<void> {
    await this.ds.query('DELETE FROM quotas WHERE project_id = $1', [projectId]);
  }

  /** What the project uses now, as os-quota-sets shows it (the check itself is check_volume_quota). */
  async usage(projectId: string): Promise<QuotaUsage> {
    // gigabytes as check_volume_quota counts them: the volumes' and the snapshots'
    const [row] = await this.ds.query(
      `SELECT v.volumes, s.snapshots, v.gigabytes + s.gigabytes AS gigabytes
         FROM (SELECT count(*)::int AS volumes, coalesce(sum(size), 0)::int AS gigabytes
                 FROM volumes WHERE project_id = $1 AND NOT deleted) v,
              (SELECT count(*)::int AS snapshots, coalesce(sum(volume_size), 0)::int AS gigabytes
                 FROM snapshots WHERE project_id = $1 AND NOT deleted) s`,
      [projectId],
    );
    return {
      volumes: Number(row.volumes),
      snapshots: Number(row.snapshots),
      gigabytes: Number(row.gigabytes),
      backups: 0,
      backup_gigabytes: 0,
      per_volume_gigabytes: 0,
      groups: 0,
    };
  }

  private async upsert(
    table: 'quotas' | 'quota_classes',
    keyColumn: 'project_id' | 'class_name',
    key: string,
    values: Partial<QuotaLimits>,
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

function overlay(
  base: QuotaLimits,
  rows: ReadonlyArray<{ resource: QuotaResource; hard_limit: number }>,
): QuotaLimits {
  const limits = { ...base };
  for (const row of rows) if (row.resource in limits) limits[row.resource] = Number(row.hard_limit);
  return limits;
}
