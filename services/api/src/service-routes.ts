import type { SchedulerRpcApi } from '@basalt/contracts';
import type { ServiceDirectory, ServiceStatus, VolumeRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { objectBody, optionalText } from './validate';
import { atLeast } from './versions';
import type { RouteContext } from './volume-routes';

/** Basalt's block-storage services under the names `cinder service-list` shows. */
const CINDER_BINARIES: Record<string, string> = {
  'basalt-scheduler': 'cinder-scheduler',
  'basalt-volume': 'cinder-volume',
};
const BASALT_BINARIES = Object.fromEntries(Object.entries(CINDER_BINARIES).map(([b, c]) => [c, b]));

/**
 * Cinder's os-services (list by host and binary, enable, disable with a reason, freeze and thaw)
 * and os-hosts (list, and a volume host's usage).
 */
export function registerServiceRoutes(
  app: FastifyInstance,
  deps: RouteContext & {
    readonly services: ServiceDirectory;
    readonly scheduler: SchedulerRpcApi;
    readonly volumes: VolumeRepository;
  },
  prefix: string,
): void {
  const tags = { schema: { tags: ['services'] } };
  // a volume service is `host@backend`, as its pools name it; the scheduler knows the backend
  const backends = async (req: FastifyRequest): Promise<Map<string, string>> => {
    const pools = await deps.scheduler.get_pools(deps.context(req), {}).catch(() => []);
    return new Map(pools.map((p) => [p.name.split('@')[0] as string, p.name.split('#')[0] as string]));
  };
  const shownHost = (s: ServiceStatus, named: Map<string, string>) =>
    s.binary === 'basalt-volume' ? (named.get(s.host) ?? s.host) : s.host;

  app.get(`${prefix}/os-services`, tags, async (req) => {
    const q = req.query as { host?: string; binary?: string };
    const [all, named] = await Promise.all([deps.services.current(), backends(req)]);
    const services = all
      .filter((s) => CINDER_BINARIES[s.binary] !== undefined)
      .filter((s) => q.binary === undefined || CINDER_BINARIES[s.binary] === q.binary)
      .filter((s) => q.host === undefined || s.host === q.host.split('@')[0]);
    return {
      services: services.map((s) => ({
        binary: CINDER_BINARIES[s.binary],
        host: shownHost(s, named),
        zone: s.availabilityZone,
        status: s.disabled ? 'disabled' : 'enabled',
        state: s.up ? 'up' : 'down',
        updated_at: s.lastHeartbeatAt.toISOString(),
        disabled_reason: s.disabledReason,
        ...(atLeast(req.apiVersion, '3.7') ? { cluster: null } : {}),
        ...(s.binary === 'basalt-volume' && atLeast(req.apiVersion, '3.49') ? { backend_state: 'up' } : {}),
      })),
    };
  });

  const change = (action: 'enable' | 'disable' | 'disable-log-reason') => async (req: FastifyRequest) => {
    const body = objectBody({ body: req.body }, 'body');
    if (typeof body.host !== 'string' || typeof body.binary !== 'string') {
      throw new InvalidInputError('host and binary are required.');
    }
    const host = body.host.split('@')[0] as string;
    const binary = BASALT_BINARIES[body.binary];
    let reason: string | null = null;
    if (action === 'disable-log-reason') {
      reason = optionalText('disabled_reason', body.disabled_reason) ?? null;
      if (!reason) throw new InvalidInputError('Disabled reason contains invalid characters or is too long');
    }
    const disabled = action !== 'enable';
    if (!binary || !(await deps.services.setDisabled(host, binary, disabled, reason))) {
      throw new NotFoundError(`Service ${body.binary} on host ${body.host} could not be found.`);
    }
    return {
      host: body.host,
      service: body.binary,
      binary: body.binary,
      disabled,
      status: disabled ? 'disabled' : 'enabled',
      ...(action === 'disable' ? {} : { disabled_reason: reason }),
    };
  };
  app.put(`${prefix}/os-services/enable`, tags, change('enable'));
  app.put(`${prefix}/os-services/disable`, tags, change('disable'));
  app.put(`${prefix}/os-services/disable-log-reason`, tags, change('disable-log-reason'));

  // Cinder's os-hosts: every enabled service as a host, and a volume host's usage by project
  app.get(`${prefix}/os-hosts`, tags, async (req) => {
    const zone = (req.query as { zone?: string }).zone;
    const [all, named] = await Promise.all([deps.services.current(), backends(req)]);
    return {
      hosts: all
        .filter((s) => CINDER_BINARIES[s.binary] !== undefined && !s.disabled)
        .filter((s) => !zone || s.availabilityZone === zone)
        .map((s) => ({
          host_name: shownHost(s, named),
          service: CINDER_BINARIES[s.binary],
          zone: s.availabilityZone,
          'service-status': s.up ? 'available' : 'unavailable',
          'service-state': s.disabled ? 'disabled' : 'enabled',
          'last-update': s.lastHeartbeatAt.toISOString(),
        })),
    };
  });
  app.get(`${prefix}/os-hosts/:host`, tags, async (req) => {
    const shown = (req.params as { host: string }).host;
    const host = shown.split('@')[0] as string;
    const volumeHosts = (await deps.services.current()).filter((s) => s.binary === 'basalt-volume');
    if (!volumeHosts.some((s) => s.host === host))
      throw new NotFoundError(`Host ${shown} could not be found.`);
    const usage = await deps.volumes.usageOnHost(host);
    const resource = (project: string, count: number, gigabytes: number) => ({
      resource: {
        host: shown,
        project,
        volume_count: String(count),
        total_volume_gb: String(gigabytes),
        snapshot_count: '0',
        total_snapshot_gb: '0',
      },
    });
    const sum = (key: 'count' | 'gigabytes') => usage.reduce((n, u) => n + u[key], 0);
    return {
      host: [
        resource('(total)', sum('count'), sum('gigabytes')),
        ...usage.map((u) => resource(u.projectId, u.count, u.gigabytes)),
      ],
    };
  });

  // replication is not offered: no host can be frozen or thawed
  for (const action of ['freeze', 'thaw']) {
    app.put(`${prefix}/os-services/${action}`, tags, async (req) => {
      throw new InvalidInputError(
        `Host ${String((req.body as { host?: unknown })?.host)} cannot be ${action === 'freeze' ? 'frozen' : 'thawed'}: there is no replication.`,
      );
    });
  }
}
