import { adminContext, type RequestContext } from '@basalt/context';
import {
  type ComputeCapabilities,
  type ComputeRpcApi,
  SCHEDULER_CONTRACT,
  type ScheduleInstanceRequest,
  type ScheduleVolumeRequest,
  type VolumeCapabilities,
  type VolumeRpcApi,
} from '@basalt/contracts';
import {
  Batcher,
  INSTANCE_STATES,
  type InstanceRepository,
  type ServiceDirectory,
  type SnapshotRepository,
  VOLUME_STATES,
  type VolumeRecord,
  type VolumeRepository,
  type VolumeTypeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { contractEndpoint, isBrokerOutage, type RpcEndpoint, RpcUndeliverableError } from '@basalt/rpc';
import { type AllocationRatios, type ComputeHostManager, placeInstance } from './compute-placement';
import { availabilityZoneFilter, capabilitiesFilter, placeVolume } from './filter-scheduler';
import type { HostManager } from './host-manager';

const { place, failCreate } = VOLUME_STATES.movesOf('scheduler');
const moves = INSTANCE_STATES.movesOf('scheduler');

export interface SchedulerManagerOptions {
  readonly capabilitiesMaxAgeMs: number;
  /** How long after start placements wait for the live hosts' first reports. */
  readonly capabilitiesWaitMs: number;
  /** Seconds a volume may wait unplaced, untouched, before `resumeStalled` places it. */
  readonly resumeStalledAfterSec: number;
  readonly allocationRatios: AllocationRatios;
}

/** The scheduler's RPC methods: keep host capabilities, place new volumes, hand them to their host. */
export class SchedulerManager {
  /** Placements made meanwhile are written in one statement (group commit). */
  private readonly placements: Batcher<{ id: string; host: string; pool?: string }, boolean>;
  private readonly reportsDeadline: number;

  constructor(
    private readonly deps: {
      readonly services: ServiceDirectory;
      readonly volumes: VolumeRepository;
      readonly snapshots: SnapshotRepository;
      readonly volumeTypes: VolumeTypeRepository;
      readonly volumeRpc: VolumeRpcApi;
      readonly hosts: HostManager;
      readonly instances: InstanceRepository;
      readonly computeApi: ComputeRpcApi;
      readonly computeHosts: ComputeHostManager;
    },
    private readonly options: SchedulerManagerOptions,
  ) {
    this.placements = new Batcher((placements) => deps.volumes.placeOnHosts(placements));
    this.reportsDeadline = Date.now() + options.capabilitiesWaitMs;
  }

  endpoint(): RpcEndpoint {
    return contractEndpoint(SCHEDULER_CONTRACT, {
      update_service_capabilities: async (args, inv) => {
        this.deps.hosts.update(args.host, args.capabilities);
        await this.keep(args.host, 'basalt-volume', args.capabilities, inv.log);
      },
      get_pools: async () =>
        this.deps.hosts.all().map((h) => ({
          name: `${h.host}@${this.deps.hosts.poolOf(h.host)}`,
          capabilities: { ...h.capabilities, timestamp: new Date(h.receivedAt).toISOString() },
        })),
      backend_passes_filters: async (args) => {
        const placement = placeVolume(
          this.deps.hosts.all().filter((h) => h.host === args.host),
          { sizeGb: 0, availabilityZone: args.availability_zone, extraSpecs: args.extra_specs },
          {
            upHosts: await this.upHosts('basalt-volume'),
            maxAgeMs: this.options.capabilitiesMaxAgeMs,
            now: Date.now(),
          },
          // the volume is there already: only where it is and what the host is, not its room
          [availabilityZoneFilter, capabilitiesFilter],
        );
        return 'host' in placement;
      },
      create_volume: (args, inv) => this.createVolume(inv.context, args, inv.log),
      run_instance: (args, inv) => this.runInstance(inv.context, args, inv.log),
      update_compute_capabilities: async (args, inv) => {
        if (this.deps.computeHosts.update(args.host, args.capabilities)) {
          inv.log.info({ host: args.host, capabilities: args.capabilities }, 'compute host joined');
        }
        await this.keep(args.host, 'basalt-compute', args.capabilities, inv.log);
      },
    });
  }

  /**
   * What every host reported last, from the services table, as if just heard at the time it was
   * made (so reports too old for placement stay unused): a scheduler that starts places at once.
   */
  async restoreReports(log: Logger): Promise<void> {
    const { services, hosts, computeHosts } = this.deps;
    const now = Date.now();
    const volumeHosts = await services.lastReports<VolumeCapabilities>('basalt-volume');
    for (const r of volumeHosts) hosts.update(r.host, r.capabilities, now - r.ageMs);
    const compute = await services.lastReports<ComputeCapabilities>('basalt-compute');
    for (const r of compute) computeHosts.update(r.host, r.capabilities, now - r.ageMs);
    log.info(
      { volume_hosts: volumeHosts.length, compute_hosts: compute.length },
      'last host reports restored',
    );
  }

  /** The report stored for the next scheduler to start; placement works from memory, so a failed write only logs. */
  private async keep(host: string, binary: string, capabilities: object, log: Logger): Promise<void> {
    await this.deps.services
      .recordCapabilities(host, binary, capabilities)
      .catch((error: unknown) =>
        log.warn({ host, err: errorMessage(error) }, 'could not store the host report'),
      );
  }

  /**
   * Places the volume from what the API sent (size and zone, as Cinder's request_spec), so a
   * create costs the scheduler no read; the write that records the placement takes only if no
   * scheduler placed the volume before, and a redelivered request hands the volume to the host
   * chosen the first time.
   */
  async createVolume(ctx: RequestContext, request: ScheduleVolumeRequest, log: Logger): Promise<void> {
    const volumeId = request.volume_id;
    const host = await this.place(ctx, request, log);
    if (!host) return;
    try {
      await this.deps.volumeRpc.create_volume(ctx, host, { volume_id: volumeId });
      log.info({ volume_id: volumeId, host }, 'volume scheduled');
    } catch (error) {
      if (isBrokerOutage(error)) {
        // the placement is recorded: the host's sweep creates the volume when the broker is back
        log.warn(
          { volume_id: volumeId, host, err: errorMessage(error) },
          'volume placed, cast left to the sweep',
        );
        return;
      }
      const reason =
        error instanceof RpcUndeliverableError
          ? `volume host ${host} is not listening`
          : `could not reach volume host ${host}: ${errorMessage(error)}`;
      await this.deps.volumes.transition(volumeId, failCreate, {
        statusReason: reason,
        statusRequestId: ctx.requestId,
      });
    }
  }

  /**
   * Places an instance on a compute host with room for its flavor and casts `run_instance` to
   * it; no such host ends the instance in `ERROR` with the reason as its fault. The placement is
   * a compare-and-swap (`scheduling` → `spawning` with the host), so a redelivered request hands
   * the instance to the host chosen the first time.
   */
  async runInstance(ctx: RequestContext, request: ScheduleInstanceRequest, log: Logger): Promise<void> {
    const { instances, computeHosts, computeApi } = this.deps;
    const id = request.instance_uuid;
    const want = {
      memoryMb: request.memory_mb,
      vcpus: request.vcpus,
      diskGb: request.root_gb + request.ephemeral_gb,
    };
    const placement = placeInstance(computeHosts.all(), want, {
      upHosts: await this.upHosts('basalt-compute'),
      maxAgeMs: this.options.capabilitiesMaxAgeMs,
      now: Date.now(),
      ratios: this.options.allocationRatios,
    });
    let host: string | undefined;
    if ('host' in placement) {
      computeHosts.claim(placement.host, want);
      const placed = await instances
        .transition(id, moves.schedule, { host: placement.host })
        .catch((error) => {
          computeHosts.claim(placement.host, want, -1);
          throw error;
        });
      if (placed) host = placement.host;
      else computeHosts.claim(placement.host, want, -1);
    } else if (await instances.transition(id, moves.fail, { faultMessage: placement.reason })) {
      log.warn({ instance_uuid: id, reason: placement.reason }, 'no host for instance');
      return;
    }
    if (!host) {
      // placed by an earlier delivery that may have stopped before handing the instance over
      const instance = await instances.find(id);
      if (instance?.vmState !== 'building' || instance.taskState !== 'spawning' || !instance.host) {
        log.info({ instance_uuid: id, vm_state: instance?.vmState }, 'nothing to schedule');
        return;
      }
      host = instance.host;
    }
    try {
      await computeApi.run_instance(ctx, host, { instance_uuid: id });
      log.info({ instance_uuid: id, host }, 'instance scheduled');
    } catch (error) {
      const reason =
        error instanceof RpcUndeliverableError
          ? `compute host ${host} is not listening`
          : `could not reach compute host ${host}: ${errorMessage(error)}`;
      await instances.transition(id, moves.fail, { faultMessage: reason });
    }
  }

  /**
   * Places the volumes left `creating` without a host for `resumeStalledAfterSec`: their request
   * was lost to an outage longer than the handler's retries. Run periodically; if several
   * schedulers do it at once, one placement wins and the others hand over to its host.
   */
  async resumeStalled(log: Logger): Promise<number> {
    for (const i of await this.deps.instances.unplaced(this.options.resumeStalledAfterSec)) {
      log.warn({ instance_uuid: i.id, since: i.updatedAt }, 'placing an instance whose request was lost');
      await this.runInstance(
        adminContext(),
        {
          instance_uuid: i.id,
          memory_mb: i.memoryMb,
          vcpus: i.vcpus,
          root_gb: i.rootGb,
          ephemeral_gb: i.ephemeralGb,
        },
        log,
      );
    }
    const stalled = await this.deps.volumes.unplaced(this.options.resumeStalledAfterSec);
    for (const v of stalled) {
      log.warn({ volume_id: v.id, since: v.updatedAt }, 'placing a volume whose request was lost');
      const type = v.volumeType ? await this.deps.volumeTypes.find(v.volumeType, undefined) : undefined;
      await this.createVolume(
        adminContext(),
        {
          volume_id: v.id,
          size: v.size,
          availability_zone: v.availabilityZone,
          ...(type ? { extra_specs: type.extraSpecs } : {}),
          ...(await this.sourceHost(v)),
        },
        log,
      );
    }
    return stalled.length;
  }

  /** The volume's host: chosen now, or by an earlier delivery of the same request; none when there is nothing to hand over. */
  private async place(
    ctx: RequestContext,
    request: ScheduleVolumeRequest,
    log: Logger,
  ): Promise<string | undefined> {
    const { volumes, hosts } = this.deps;
    const id = request.volume_id;
    const upHosts = await this.upHosts('basalt-volume');
    await hosts.reportsFrom(upHosts, this.options.capabilitiesMaxAgeMs, this.reportsDeadline);
    // a volume made from a snapshot or a volume goes to its source's host, or nowhere
    const candidates = request.resource_backend
      ? hosts.all().filter((h) => h.host === request.resource_backend)
      : hosts.all();
    const placement = placeVolume(
      candidates,
      {
        sizeGb: request.size,
        availabilityZone: request.availability_zone,
        ...(request.extra_specs ? { extraSpecs: request.extra_specs } : {}),
      },
      { upHosts, maxAgeMs: this.options.capabilitiesMaxAgeMs, now: Date.now() },
    );
    if ('host' in placement) {
      // counted before the write, so the placements of a burst see each other
      hosts.consume(placement.host, request.size);
      let placed = false;
      try {
        const pool = hosts.poolOf(placement.host);
        placed = await this.placements.submit({ id, host: placement.host, ...(pool ? { pool } : {}) });
      } finally {
        if (!placed) hosts.consume(placement.host, -request.size);
      }
      if (placed) return placement.host;
    } else if (await volumes.failUnplaced(id, placement.reason, ctx.requestId)) {
      log.warn({ volume_id: id, reason: placement.reason }, 'no host for volume');
      return undefined;
    }
    // not placed by this delivery: deleted or failed meanwhile, or placed by an earlier delivery
    // that may have stopped before handing the volume over
    const volume = await volumes.find(id);
    if (volume && place.from.includes(volume.status) && volume.host) return volume.host;
    log.info({ volume_id: id, status: volume?.status }, 'nothing to schedule');
    return undefined;
  }

  /** The host of a volume's source (snapshot or volume), which the volume must go to. */
  private async sourceHost(v: VolumeRecord): Promise<{ resource_backend?: string }> {
    const host = v.snapshotId
      ? (await this.deps.snapshots.find(v.snapshotId))?.host
      : v.sourceVolid
        ? (await this.deps.volumes.find(v.sourceVolid))?.host
        : undefined;
    return host ? { resource_backend: host } : {};
  }

  private async upHosts(binary: string): Promise<Set<string>> {
    const services = await this.deps.services.list();
    return new Set(services.filter((s) => s.binary === binary && s.up && !s.disabled).map((s) => s.host));
  }
}
