import { childContext, type RequestContext } from '@basalt/context';
import { SCHEDULER_RPC_VERSION, type VolumeCapabilities, type VolumeRpcApi } from '@basalt/contracts';
import type { ServiceDirectory, VolumeRepository } from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { arg, type RpcEndpoint, RpcUndeliverableError } from '@basalt/rpc';
import { placeVolume } from './filter-scheduler';
import type { HostManager } from './host-manager';

export interface SchedulerManagerOptions {
  readonly capabilitiesMaxAgeMs: number;
}

/** The scheduler's RPC methods: keep host capabilities, place new volumes, hand them to their host. */
export class SchedulerManager {
  constructor(
    private readonly deps: {
      readonly services: ServiceDirectory;
      readonly volumes: VolumeRepository;
      readonly volumeApi: VolumeRpcApi;
      readonly hosts: HostManager;
    },
    private readonly options: SchedulerManagerOptions,
  ) {}

  endpoint(): RpcEndpoint {
    return {
      version: SCHEDULER_RPC_VERSION,
      methods: {
        update_service_capabilities: async (args) => {
          this.deps.hosts.update(
            arg.string(args, 'host'),
            arg.object(args, 'capabilities') as unknown as VolumeCapabilities,
          );
          return null;
        },
        create_volume: (args, inv) => this.createVolume(inv.context, arg.string(args, 'volume_id'), inv.log),
      },
    };
  }

  async createVolume(ctx: RequestContext, volumeId: string, log: Logger): Promise<void> {
    const { volumes, volumeApi, hosts } = this.deps;
    const volume = await volumes.find(volumeId);
    if (volume?.status !== 'creating') {
      log.info({ volume_id: volumeId, status: volume?.status }, 'nothing to schedule');
      return;
    }
    let host = volume.host;
    if (!host) {
      const placement = placeVolume(
        hosts.all(),
        { sizeGb: volume.size, availabilityZone: volume.availabilityZone },
        {
          upHosts: await this.upVolumeHosts(),
          maxAgeMs: this.options.capabilitiesMaxAgeMs,
          now: Date.now(),
        },
      );
      if ('reason' in placement) {
        log.warn({ volume_id: volumeId, reason: placement.reason }, 'no host for volume');
        await volumes.transition(volumeId, ['creating'], 'error', { statusReason: placement.reason });
        return;
      }
      host = placement.host;
      hosts.consume(host, volume.size);
      await volumes.transition(volumeId, ['creating'], 'creating', { host, scheduledAt: new Date() });
    }
    try {
      await volumeApi.createVolume(childContext(ctx), host, volumeId);
      log.info({ volume_id: volumeId, host }, 'volume scheduled');
    } catch (error) {
      const reason =
        error instanceof RpcUndeliverableError
          ? `volume host ${host} is not listening`
          : `could not reach volume host ${host}: ${errorMessage(error)}`;
      await volumes.transition(volumeId, ['creating'], 'error', { statusReason: reason });
    }
  }

  private async upVolumeHosts(): Promise<Set<string>> {
    const services = await this.deps.services.list();
    return new Set(
      services.filter((s) => s.binary === 'basalt-volume' && s.up && !s.disabled).map((s) => s.host),
    );
  }
}
