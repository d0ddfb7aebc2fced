import { KeyedLock } from '@basalt/concurrency';
import { adminContext, type RequestContext } from '@basalt/context';
import {
  COMPUTE_CONTRACT,
  type ComputeCapabilities,
  type ConnectionInfo,
  type RebootType,
  type ReconcileReport,
  type SchedulerRpcApi,
  type VolumeRpcApi,
} from '@basalt/contracts';
import {
  type BlockDeviceMapping,
  type BlockDeviceMappingRepository,
  INSTANCE_STATES,
  type InstanceActionRepository,
  type InstanceRecord,
  type InstanceRepository,
  instanceName,
  isTransientDatabaseError,
  MAPPING_STATES,
  VOLUME_STATES,
  type VolumeRepository,
} from '@basalt/db';
import { errorMessage, InvalidInputError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { contractEndpoint, isBrokerOutage, type RpcEndpoint } from '@basalt/rpc';
import type { VolumeConnector } from './connectors/volume-connector';
import type { HypervisorCapacity } from './hypervisor-capacity';
import type { ImageSource } from './imagecache/image-source';
import type { InstanceStorage } from './imagecache/instance-storage';
import { PhaseTimer } from './phase-timer';
import { buildDomainSpec, diskTarget, type VolumeMapping } from './virt/domain-spec';
import { diskXml, domainXml } from './virt/domain-xml';
import { DomainNotFoundError } from './virt/errors';
import type { Hypervisor } from './virt/hypervisor';

const moves = INSTANCE_STATES.movesOf('compute-worker');
const GiB = 2 ** 30;
const volumeMoves = VOLUME_STATES.movesOf('compute-worker');

export interface ComputeManagerOptions {
  readonly host: string;
  readonly availabilityZone: string;
  readonly virtType: 'kvm' | 'qemu';
  readonly serialShell: boolean;
  readonly instanceNameTemplate: string;
  readonly softRebootTimeoutMs: number;
  readonly detachTimeoutMs: number;
  /** Caps every guest's memory below its flavor's (0: the flavor's); for hosts smaller than the flavors. */
  readonly maxGuestMemoryMb: number;
  /** Seconds an instance or a volume mapping may sit in a transitional state untouched before it is resumed. */
  readonly resumeStalledAfterSec: number;
}

export interface ComputeManagerDeps {
  readonly instances: InstanceRepository;
  readonly mappings: BlockDeviceMappingRepository;
  readonly volumes: VolumeRepository;
  /** The image API's view of an image to boot from. */
  readonly images: { source(imageId: string): Promise<ImageSource> };
  /** Where the events of what this host does for an instance action are recorded. */
  readonly actions: InstanceActionRepository;
  readonly hypervisor: Hypervisor;
  readonly connector: VolumeConnector;
  readonly storage: InstanceStorage;
  readonly volumeRpc: VolumeRpcApi;
  readonly scheduler: SchedulerRpcApi;
  readonly capacity: () => Promise<HypervisorCapacity>;
  readonly log: Logger;
}

/**
 * The compute host's manager (nova's compute/manager.py): instances through the hypervisor and
 * the instance storage, volumes through the volume hosts and the connector. Guests are always
 * built from the database (the instance row and its block-device mappings), so a hard reboot
 * or a restart of this worker gives back every attached volume. Work on one instance runs one
 * piece at a time, and every method may run twice harmlessly.
 */
export class ComputeManager {
  private readonly lock = new KeyedLock();
  private resumeAllNext = false;

  constructor(
    private readonly deps: ComputeManagerDeps,
    private readonly options: ComputeManagerOptions,
  ) {}

  /** The compute topic's methods; `reconcile` is the reconciler's, which looks at the whole host. */
  endpoint(reconcile: (dryRun: boolean) => Promise<ReconcileReport>): RpcEndpoint {
    return contractEndpoint(COMPUTE_CONTRACT, {
      run_instance: (args, inv) => this.runInstance(inv.context, args.instance_uuid, inv.log),
      terminate_instance: (args, inv) => this.terminateInstance(inv.context, args.instance_uuid, inv.log),
      reboot_instance: (args, inv) =>
        this.rebootInstance(inv.context, args.instance_uuid, args.reboot_type, inv.log),
      attach_volume: (args, inv) =>
        this.attachVolume(inv.context, args.instance_uuid, args.volume_id, inv.log),
      detach_volume: (args, inv) =>
        this.detachVolume(inv.context, args.instance_uuid, args.volume_id, inv.log),
      extend_volume: (args, inv) =>
        this.extendVolume(inv.context, args.instance_uuid, args.volume_id, inv.log),
      publish_service_capabilities: async (_args, inv) => {
        await this.reportCapabilities(inv.context);
      },
      reconcile: (args) => reconcile(args.dry_run),
    });
  }

  /** What this host has and what its instances take, to every scheduler. */
  async reportCapabilities(ctx: RequestContext = adminContext()): Promise<ComputeCapabilities> {
    const capacity = await this.deps.capacity();
    const mine = await this.deps.instances.onHost(this.options.host);
    const capabilities: ComputeCapabilities = {
      memory_mb: capacity.memoryMb,
      vcpus: capacity.vcpus,
      local_gb: capacity.localGb,
      memory_mb_used: mine.reduce((sum, i) => sum + i.memoryMb, 0),
      vcpus_used: mine.reduce((sum, i) => sum + i.vcpus, 0),
      local_gb_used: mine.reduce((sum, i) => sum + i.rootGb + i.ephemeralGb, 0),
      hypervisor_type: 'QEMU',
      availability_zone: this.options.availabilityZone,
    };
    await this.deps.scheduler.update_compute_capabilities(ctx, { host: this.options.host, capabilities });
    return capabilities;
  }

  runInstance(ctx: RequestContext, id: string, log: Logger): Promise<void> {
    return this.lock.run(id, async () => {
      const instance = await this.deps.instances.find(id);
      if (!this.owns(instance, ['building/spawning'], log, 'spawn')) return;
      // this host verifies no image signatures: nova's _check_trusted_certs for such a driver
      if (instance.trustedCerts && instance.trustedCerts.length > 0) {
        const reason =
          'Trusted image certificates provided on host that does not support certificate validation.';
        log.error({ instance_uuid: id }, reason);
        await this.deps.instances.transition(id, moves.fail, {
          faultMessage: `Build of instance ${id} aborted: ${reason}`,
        });
        return;
      }
      await this.failing(instance, 'spawn', log, async () => {
        const name = this.name(instance);
        const image = await this.deps.images.source(instance.imageId);
        await this.deps.storage.createDisks({
          name,
          image,
          rootGb: instance.rootGb,
          ephemeralGb: instance.ephemeralGb,
        });
        await this.deps.hypervisor.spawn(name, await this.guestXml(ctx, instance));
        await this.deps.instances.transition(id, moves.spawned, { launchedAt: new Date() });
        log.info({ instance_uuid: id, name }, 'instance spawned');
      });
    });
  }

  /**
   * Deletes the instance: the domain goes first (so no disk is in use), then every volume is
   * disconnected and handed back `available`, then the instance's folder; `_base` stays.
   */
  terminateInstance(ctx: RequestContext, id: string, log: Logger): Promise<void> {
    return this.lock.run(id, async () => {
      const instance = await this.deps.instances.find(id);
      if (!this.owns(instance, ['deleting'], log, 'delete')) return;
      await this.failing(instance, 'delete', log, async () => {
        const name = this.name(instance);
        await this.deps.hypervisor.destroy(name);
        for (const mapping of await this.deps.mappings.forInstance(id)) {
          await this.release(ctx, mapping);
        }
        await this.deps.storage.removeInstance(name);
        await this.deps.instances.transition(id, moves.finishDelete);
        log.info({ instance_uuid: id, name }, 'instance deleted');
      });
    });
  }

  /**
   * A soft reboot asks the guest (and falls back to a hard one if it ignores the request); a
   * hard reboot powers off and defines the domain anew from the database, with every volume
   * connected again, so none is lost.
   */
  rebootInstance(ctx: RequestContext, id: string, type: RebootType, log: Logger): Promise<void> {
    return this.lock.run(id, async () => {
      const instance = await this.deps.instances.find(id);
      if (!this.owns(instance, ['rebooting', 'rebooting_hard'], log, 'reboot')) return;
      await this.failing(instance, 'reboot', log, async () => {
        const name = this.name(instance);
        // a hard reboot asked for since overrides a soft one
        const soft =
          type === 'SOFT' &&
          instance.taskState === 'rebooting' &&
          (await this.deps.hypervisor.softReboot(name, this.options.softRebootTimeoutMs));
        if (!soft) await this.deps.hypervisor.hardReboot(name, await this.guestXml(ctx, instance));
        await this.deps.instances.transition(id, moves.rebooted);
        log.info({ instance_uuid: id, type: soft ? 'SOFT' : 'HARD' }, 'instance rebooted');
      });
    });
  }

  /**
   * Connects the volume the API reserved (`attaching`) and hot-plugs it live and into the
   * persistent definition, then has the volume host mark it `in-use`.
   */
  attachVolume(ctx: RequestContext, instanceId: string, volumeId: string, log: Logger): Promise<void> {
    return this.lock.run(instanceId, async () => {
      const [mapping, instance] = await Promise.all([
        this.deps.mappings.forVolume(instanceId, volumeId),
        this.deps.instances.find(instanceId),
      ]);
      if (mapping?.status !== 'attaching' || !this.owns(instance, ['active/'], log, 'attach')) {
        log.info({ instance_uuid: instanceId, volume_id: volumeId }, 'nothing to attach');
        return;
      }
      await this.attach(ctx, instance, mapping, log);
    });
  }

  /**
   * The attach's steps, each of which may run again harmlessly. A failure for want of the broker,
   * a volume host or the database leaves it `attaching`, to be retried and then resumed by the
   * sweep: its request can still be met. Any other failure undoes every step: disk unplugged,
   * connection and secret removed, the initiator out of the target's ACL, the volume `available`
   * again and the mapping gone.
   */
  private async attach(
    ctx: RequestContext,
    instance: InstanceRecord,
    mapping: BlockDeviceMapping,
    log: Logger,
  ): Promise<void> {
    const subject = { instance_uuid: instance.id, volume_id: mapping.volumeId };
    const timer = new PhaseTimer();
    try {
      const info = await this.connect(ctx, mapping);
      timer.lap('target');
      await this.deps.hypervisor.attachDisk(this.name(instance), this.diskXml(mapping, info));
      timer.lap('libvirt');
      await this.deps.volumeRpc.attach_volume(ctx, mapping.volumeHost, {
        volume_id: mapping.volumeId,
        instance_uuid: instance.id,
        mountpoint: mapping.deviceName,
        connector: this.deps.connector.properties(),
      });
      await this.deps.mappings.transition(mapping.id, MAPPING_STATES.moves.attached);
      timer.lap('finish');
      log.info({ ...subject, device: mapping.deviceName, ...timer.fields() }, 'volume attached');
    } catch (error) {
      if (isBrokerOutage(error) || isTransientDatabaseError(error)) {
        log.warn({ ...subject, err: errorMessage(error) }, 'attach interrupted, left attaching to resume');
        throw error;
      }
      log.error({ ...subject, err: errorMessage(error) }, 'attach failed');
      await this.rollBackAttach(ctx, instance, mapping, log);
    }
  }

  /**
   * Unplugs the volume the API marked `detaching`, waits until the guest let go of it
   * (domblklist), disconnects it and hands it back `available`. If the guest does not release
   * the disk the volume goes back to `in-use`, still attached.
   */
  detachVolume(ctx: RequestContext, instanceId: string, volumeId: string, log: Logger): Promise<void> {
    return this.lock.run(instanceId, async () => {
      const [mapping, instance] = await Promise.all([
        this.deps.mappings.forVolume(instanceId, volumeId),
        this.deps.instances.find(instanceId),
      ]);
      if (mapping?.status !== 'detaching' || !instance || instance.host !== this.options.host) {
        log.info({ instance_uuid: instanceId, volume_id: volumeId }, 'nothing to detach');
        return;
      }
      const timer = new PhaseTimer();
      try {
        await this.unplug(instance, mapping);
        timer.lap('libvirt');
      } catch (error) {
        if (isTransientDatabaseError(error)) throw error;
        log.error(
          { instance_uuid: instanceId, volume_id: volumeId, err: errorMessage(error) },
          'detach failed',
        );
        await this.deps.mappings.transition(mapping.id, MAPPING_STATES.moves.rollDetaching);
        await this.deps.volumes.transition(volumeId, volumeMoves.rollDetaching, { attachStatus: 'attached' });
        return;
      }
      await this.release(ctx, mapping);
      timer.lap('target');
      log.info({ instance_uuid: instanceId, volume_id: volumeId, ...timer.fields() }, 'volume detached');
    });
  }

  /**
   * The volume grew on its host: this host sees the new size (the connector) and the running
   * guest's disk takes it (blockresize). Recorded as the event `compute_extend_volume` of the
   * request's instance action, `Success` or `Error` with what went wrong (nova's
   * wrap_instance_event); run twice, it resizes to the same size again.
   */
  extendVolume(ctx: RequestContext, instanceId: string, volumeId: string, log: Logger): Promise<void> {
    const event = 'compute_extend_volume';
    return this.lock.run(instanceId, async () => {
      const recorded = await this.deps.actions.startEvent(
        instanceId,
        ctx.requestId,
        event,
        this.options.host,
      );
      let failure: string | undefined;
      try {
        const mapping = await this.deps.mappings.forVolume(instanceId, volumeId);
        const instance = await this.deps.instances.find(instanceId);
        const info = mapping && storedConnection(mapping);
        if (mapping?.status !== 'attached' || !info || instance?.host !== this.options.host) {
          throw new InvalidInputError(
            `volume ${volumeId} is not attached to instance ${instanceId} on this host`,
          );
        }
        const volume = await this.deps.volumes.get(volumeId);
        await this.deps.connector.extend(info);
        const target = diskTarget(mapping.deviceName);
        const resized = await this.deps.hypervisor.resizeDisk(this.name(instance), target, volume.size * GiB);
        log.info(
          { instance_uuid: instanceId, volume_id: volumeId, size: volume.size, live: resized },
          resized ? "guest's disk resized" : 'guest not running: its disk takes the new size when it starts',
        );
      } catch (error) {
        if (isTransientDatabaseError(error)) throw error;
        failure = errorMessage(error);
        log.error(
          { instance_uuid: instanceId, volume_id: volumeId, err: failure },
          'extend of an attached volume failed',
        );
      }
      if (recorded) await this.deps.actions.finishEvent(instanceId, ctx.requestId, event, failure);
    });
  }

  /**
   * After a restart of this worker: every instance it owns is finished or failed where it was
   * left, and every running one has its domain rebuilt from the database with its volumes'
   * connections made again.
   */
  async recover(log: Logger): Promise<void> {
    for (const instance of await this.deps.instances.onHost(this.options.host)) {
      await this.resume(instance, log, true);
    }
  }

  /**
   * Resumes the instances and volume mappings of this host that sat in a transitional state for
   * `resumeStalledAfterSec` with nothing here working on them (their message was lost). Periodic.
   */
  async resumeStalled(log: Logger): Promise<void> {
    const all = this.resumeAllNext;
    this.resumeAllNext = false;
    try {
      await this.resumeIdle(log, all ? 0 : this.options.resumeStalledAfterSec);
    } catch (error) {
      this.resumeAllNext ||= all;
      throw error;
    }
  }

  /** The next sweep resumes every unfinished instance and mapping not in progress (a connection came back). */
  resumeAllSoon(): void {
    this.resumeAllNext = true;
  }

  private async resumeIdle(log: Logger, idle: number): Promise<void> {
    const cutoff = Date.now() - idle * 1000;
    for (const instance of await this.deps.instances.onHost(this.options.host)) {
      if (
        instance.taskState === null ||
        instance.updatedAt.getTime() > cutoff ||
        this.lock.busy(instance.id)
      ) {
        continue;
      }
      await this.resume(instance, log, false);
    }
    for (const mapping of await this.deps.mappings.stalledOnHost(this.options.host, idle)) {
      if (!this.lock.busy(mapping.instanceUuid)) await this.resumeMapping(mapping, log);
    }
  }

  private async resume(instance: InstanceRecord, log: Logger, restarted: boolean): Promise<void> {
    const ctx = adminContext();
    if (instance.taskState !== null) {
      log.warn({ instance_uuid: instance.id, task_state: instance.taskState }, 'resuming an unfinished task');
    }
    if (instance.taskState === 'deleting') return this.terminateInstance(ctx, instance.id, log);
    if (instance.taskState === 'spawning') return this.runInstance(ctx, instance.id, log);
    // the guest may have been left anywhere between off and on: a hard reboot settles it
    if (instance.taskState === 'rebooting' || instance.taskState === 'rebooting_hard') {
      return this.rebootInstance(ctx, instance.id, 'HARD', log);
    }
    if (!restarted || instance.vmState !== 'active') return;
    for (const mapping of await this.deps.mappings.forInstance(instance.id)) {
      if (mapping.status !== 'attached') await this.resumeMapping(mapping, log);
    }
    await this.lock.run(instance.id, async () => {
      const now = await this.deps.instances.find(instance.id);
      if (!this.owns(now, ['active/'], log, 'rebuild')) return;
      await this.failing(now, 'rebuild', log, async () => {
        // define anew from the database (the running guest keeps going) and start it if it is not running
        await this.deps.hypervisor.spawn(this.name(now), await this.guestXml(ctx, now));
        log.info({ instance_uuid: now.id }, 'domain rebuilt from the database');
      });
    });
  }

  /**
   * An attach that never finished is finished while its instance can take it (running here with
   * no task), and undone once it cannot; a detach that never finished is finished.
   */
  private async resumeMapping(mapping: BlockDeviceMapping, log: Logger): Promise<void> {
    const ctx = adminContext();
    if (mapping.status === 'detaching') {
      await this.detachVolume(ctx, mapping.instanceUuid, mapping.volumeId, log);
      return;
    }
    await this.lock.run(mapping.instanceUuid, async () => {
      const now = await this.deps.mappings.find(mapping.id);
      const instance = await this.deps.instances.find(mapping.instanceUuid);
      if (now?.status !== 'attaching' || !instance || instance.host !== this.options.host) return;
      const subject = { instance_uuid: instance.id, volume_id: mapping.volumeId };
      if (instance.vmState === 'active' && instance.taskState === null) {
        log.warn(subject, 'resuming an unfinished attach');
        // still no broker or volume host: left attaching for the next sweep, the rest of this one goes on
        await this.attach(ctx, instance, now, log).catch((error: unknown) => {
          if (!isBrokerOutage(error)) throw error;
        });
        return;
      }
      // a reboot or a delete under way settles the instance first; a later sweep looks again
      if (instance.taskState !== null) return;
      log.warn({ ...subject, vm_state: instance.vmState }, 'undoing an attach its instance cannot take');
      await this.rollBackAttach(ctx, instance, now, log);
    });
  }

  /** Every step of an attach undone, each one whether or not it was reached. */
  private async rollBackAttach(
    ctx: RequestContext,
    instance: InstanceRecord,
    mapping: BlockDeviceMapping,
    log: Logger,
  ): Promise<void> {
    const step = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        log.warn(
          { volume_id: mapping.volumeId, err: errorMessage(error) },
          `attach rollback: ${what} failed`,
        );
      }
    };
    const latest = (await this.deps.mappings.find(mapping.id)) ?? mapping;
    await step('unplug', () => this.unplug(instance, latest));
    await this.release(ctx, latest);
  }

  /** Removes the volume's disk from the domain (live and persistent) and waits until it is gone. */
  private async unplug(instance: InstanceRecord, mapping: BlockDeviceMapping): Promise<void> {
    const info = storedConnection(mapping);
    if (!info) return;
    await this.deps.hypervisor
      .detachDisk(
        this.name(instance),
        diskTarget(mapping.deviceName),
        this.diskXml(mapping, info),
        this.options.detachTimeoutMs,
      )
      .catch((error: unknown) => {
        // no domain, no disk to take out of it
        if (!(error instanceof DomainNotFoundError)) throw error;
      });
  }

  /**
   * The end of a volume's time on this host, whatever got done before: the connection undone (the
   * libvirt secret or the iSCSI session), the initiator out of the target's ACL, the volume back
   * to `available` and the mapping gone.
   */
  private async release(ctx: RequestContext, mapping: BlockDeviceMapping): Promise<void> {
    const { connector, volumeRpc, volumes, mappings } = this.deps;
    const info = storedConnection(mapping);
    // this host's side and the target's side of the connection, undone side by side; both are
    // over before anything goes on, and a failure of either is thrown once both are
    const undone = await Promise.allSettled([
      info ? connector.disconnect(info) : connector.forget(mapping.volumeId),
      volumeRpc.terminate_connection(ctx, mapping.volumeHost, {
        volume_id: mapping.volumeId,
        connector: this.deps.connector.properties(),
      }),
    ]);
    for (const result of undone) if (result.status === 'rejected') throw result.reason;
    // in-use goes through detaching; the volume host's detach_volume takes detaching (and an
    // attaching whose attach failed) to available
    await volumes.transition(mapping.volumeId, volumeMoves.beginDetach, { attachStatus: 'detaching' });
    await volumeRpc.detach_volume(ctx, mapping.volumeHost, { volume_id: mapping.volumeId });
    await mappings.remove(mapping.id);
  }

  /** Asks the volume host for the volume's connection (its ACL now names this host) and makes it here. */
  private async connect(ctx: RequestContext, mapping: BlockDeviceMapping): Promise<ConnectionInfo> {
    // this host's part that needs no answer is made while the volume host answers; both are over
    // before anything goes on, so a roll-back finds everything either did
    const [asked, prepared] = await Promise.allSettled([
      this.deps.volumeRpc.initialize_connection(ctx, mapping.volumeHost, {
        volume_id: mapping.volumeId,
        connector: this.deps.connector.properties(),
      }),
      this.deps.connector.prepare(mapping.volumeId),
    ]);
    if (asked.status === 'rejected') throw asked.reason;
    if (prepared.status === 'rejected') throw prepared.reason;
    const info = asked.value;
    // recorded before it is used, so whatever follows can be undone from the row
    await this.deps.mappings.recordConnection(mapping.id, {
      ...info,
      data: { ...info.data, auth_password: REDACTED },
    });
    await this.deps.connector.connect(info);
    return info;
  }

  /** The domain XML from the database: the instance row and its attached volumes, each connected. */
  private async guestXml(ctx: RequestContext, instance: InstanceRecord): Promise<string> {
    const volumes: VolumeMapping[] = [];
    for (const mapping of await this.deps.mappings.forInstance(instance.id)) {
      // a volume half attached or half detached is not given to the rebuilt guest: the attach is
      // resumed (or undone), the detach finished
      if (mapping.status !== 'attached') continue;
      volumes.push({
        volumeId: mapping.volumeId,
        deviceName: mapping.deviceName,
        connectionInfo: await this.connect(ctx, mapping),
      });
    }
    const name = this.name(instance);
    const cap = this.options.maxGuestMemoryMb;
    const spec = buildDomainSpec(
      {
        uuid: instance.id,
        memoryMb: cap > 0 ? Math.min(cap, instance.memoryMb) : instance.memoryMb,
        vcpus: instance.vcpus,
        ephemeralGb: instance.ephemeralGb,
      },
      volumes,
      {
        name,
        paths: this.deps.storage.paths(name),
        virtType: this.options.virtType,
        serialShell: this.options.serialShell,
        connector: this.deps.connector,
      },
    );
    const xml = domainXml(spec);
    await this.deps.storage.writeLibvirtXml(name, xml);
    return xml;
  }

  private diskXml(mapping: BlockDeviceMapping, info: ConnectionInfo): string {
    return diskXml({
      source: this.deps.connector.describe(info).source,
      target: diskTarget(mapping.deviceName),
      serial: mapping.volumeId,
    });
  }

  /**
   * Runs `work`; if it throws, the instance goes to `ERROR` with the reason as its fault, unless
   * the error was the database's passing trouble, which is thrown on for the retry.
   */
  private async failing(instance: InstanceRecord, what: string, log: Logger, work: () => Promise<void>) {
    try {
      await work();
    } catch (error) {
      if (isTransientDatabaseError(error)) throw error;
      log.error({ instance_uuid: instance.id, err: errorMessage(error) }, `${what} failed`);
      await this.deps.instances.transition(instance.id, moves.fail, {
        faultMessage: `${what} failed: ${errorMessage(error)}`,
      });
    }
  }

  /** True when this host should act on the instance in one of `states` (`vm/task`, or just the task). */
  private owns(
    instance: InstanceRecord | undefined,
    states: readonly string[],
    log: Logger,
    what: string,
  ): instance is InstanceRecord {
    const matches = (state: string) => {
      const [vm, task] = state.includes('/') ? state.split('/') : [undefined, state];
      return (vm === undefined || instance?.vmState === vm) && (instance?.taskState ?? '') === task;
    };
    if (instance && instance.host === this.options.host && states.some(matches)) return true;
    log.info(
      { instance_uuid: instance?.id, vm_state: instance?.vmState, task_state: instance?.taskState },
      `nothing to ${what}`,
    );
    return false;
  }

  private name(instance: InstanceRecord): string {
    return instanceName(this.options.instanceNameTemplate, instance.seq);
  }
}

/**
 * What a recorded connection holds in place of its CHAP password: the row can describe and undo
 * the connection (secret usage, portal, IQN) but never make one.
 */
const REDACTED = 'redacted';

/** The connection recorded on the mapping (its password blanked): enough to undo it and describe its disk. */
function storedConnection(mapping: BlockDeviceMapping): ConnectionInfo | undefined {
  return (mapping.connectionInfo as ConnectionInfo | null) ?? undefined;
}
