import { QuotaExceededError } from '@basalt/errors';
import type { DataSource } from 'typeorm';

export const QUOTA_RESOURCES = ['volumes', 'gigabytes'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

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
export function quotaRefusal(error: unknown, requestedGigabytes: number): unknown {
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
