import type { SchedulerRpcApi } from '@basalt/contracts';
import type { QuotaLimits, QuotaRepository, ServiceDirectory, VolumeRepository } from '@basalt/db';
import { NotFoundError } from '@basalt/errors';
import type { FastifyInstance } from 'fastify';
import { atLeast } from './versions';
import type { RouteContext } from './volume-routes';

/** The extensions Basalt serves, as Cinder's extension descriptors name them. */
const EXTENSIONS = [
  ['os-vol-host-attr', 'VolumeHostAttribute', 'Expose host as an attribute of a volume.'],
  [
    'os-vol-tenant-attr',
    'VolumeTenantAttribute',
    'Expose the internal project_id as an attribute of a volume.',
  ],
  [
    'os-vol-mig-status-attr',
    'VolumeMigStatusAttribute',
    'Expose migration_status as an attribute of a volume.',
  ],
  ['os-volume-actions', 'VolumeActions', 'Enable volume actions.'],
  ['os-extended-snapshot-attributes', 'ExtendedSnapshotAttributes', 'Extended SnapshotAttributes support.'],
  ['os-snapshot-actions', 'SnapshotActions', 'Enable snapshot manager actions.'],
  ['os-admin-actions', 'AdminActions', 'Enable admin actions.'],
  ['os-quota-sets', 'Quotas', 'Quota management support.'],
  ['os-quota-class-sets', 'QuotaClasses', 'Quota classes management support.'],
  ['os-availability-zone', 'AvailabilityZones', 'Describe Availability Zones.'],
  ['scheduler-stats', 'Scheduler_stats', 'Scheduler stats support.'],
  ['capabilities', 'Capabilities', 'Capabilities support.'],
] as const;
const UPDATED = '2024-01-01T00:00:00+00:00';

/**
 * What operators and dashboards read: pools and backend capabilities (from the scheduler's last
 * reports), availability zones, absolute limits, the extension list and the volumes summary.
 */
export function registerOperatorRoutes(
  app: FastifyInstance,
  deps: RouteContext & {
    readonly scheduler: SchedulerRpcApi;
    readonly services: ServiceDirectory;
    readonly volumes: VolumeRepository;
    readonly quotas: QuotaRepository;
    readonly quotaDefaults: QuotaLimits;
  },
  prefix: string,
): void {
  const tags = { schema: { tags: ['operators'] } };

  app.get(`${prefix}/scheduler-stats/get_pools`, tags, async (req) => {
    const detail = ['1', 'true', 'True'].includes(String((req.query as { detail?: string }).detail));
    const pools = await deps.scheduler.get_pools(deps.context(req), {});
    return { pools: pools.map((p) => (detail ? p : { name: p.name })) };
  });

  // Cinder asks the backend; the scheduler holds its last report, which is the same data
  app.get(`${prefix}/capabilities/:host`, tags, async (req) => {
    const host = (req.params as { host: string }).host;
    const pools = await deps.scheduler.get_pools(deps.context(req), {});
    const pool = pools.find((p) => p.name === host || p.name.startsWith(`${host}#`));
    if (!pool) throw new NotFoundError(`Host ${host} could not be found.`);
    const c = pool.capabilities;
    return {
      namespace: `OS::Storage::Capabilities::${pool.name.split('#')[0]}`,
      vendor_name: c.vendor_name,
      volume_backend_name: c.volume_backend_name,
      pool_name: c.pool_name,
      driver_version: c.driver_version,
      storage_protocol: c.storage_protocol,
      display_name: null,
      description: null,
      visibility: null,
      replication_targets: [],
      properties: {
        thin_provisioning: {
          title: 'Thin Provisioning',
          description: 'Sets thin provisioning.',
          type: 'boolean',
        },
      },
    };
  });

  app.get(`${prefix}/os-availability-zone`, tags, async () => {
    const services = (await deps.services.list()).filter((s) => s.binary === 'basalt-volume');
    const zones = [...new Set(services.map((s) => s.availabilityZone))].sort();
    return {
      availabilityZoneInfo: zones.map((zoneName) => ({
        zoneName,
        zoneState: {
          available: services.some((s) => s.availabilityZone === zoneName && s.up && !s.disabled),
        },
      })),
    };
  });

  app.get(`${prefix}/limits`, tags, async (req) => {
    const project = deps.project(req);
    const [limits, used] = await Promise.all([
      deps.quotas.limits(project, deps.quotaDefaults),
      deps.quotas.usage(project),
    ]);
    return {
      limits: {
        rate: [],
        absolute: {
          maxTotalVolumes: limits.volumes,
          maxTotalSnapshots: limits.snapshots,
          maxTotalVolumeGigabytes: limits.gigabytes,
          maxTotalBackups: limits.backups,
          maxTotalBackupGigabytes: limits.backup_gigabytes,
          totalVolumesUsed: used.volumes,
          totalGigabytesUsed: used.gigabytes,
          totalSnapshotsUsed: used.snapshots,
          totalBackupsUsed: used.backups,
          totalBackupGigabytesUsed: used.backup_gigabytes,
        },
      },
    };
  });

  app.get(`${prefix}/extensions`, tags, async () => ({
    extensions: EXTENSIONS.map(([alias, name, description]) => ({
      alias,
      name,
      description,
      updated: UPDATED,
      links: [],
    })),
  }));

  app.get(`${prefix}/volumes/summary`, { ...tags, config: { minVersion: '3.12' } }, async (req) => {
    const ctx = deps.context(req);
    const all = ['1', 'true', 'True'].includes(String((req.query as { all_tenants?: string }).all_tenants));
    const summary = await deps.volumes.summary(all && ctx.isAdmin ? undefined : deps.project(req));
    return {
      'volume-summary': {
        total_count: summary.count,
        total_size: summary.size,
        ...(atLeast(req.apiVersion, '3.36') ? { metadata: summary.metadata } : {}),
      },
    };
  });
}
