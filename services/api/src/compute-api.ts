import type { RequestContext } from '@basalt/context';
import type { ComputeRpcApi, RebootType, SchedulerRpcApi } from '@basalt/contracts';
import {
  type BlockDeviceMapping,
  type BlockDeviceMappingRepository,
  type ImageRecord,
  type ImageRepository,
  INSTANCE_ACTIONS,
  INSTANCE_STATES,
  type InstanceActionRepository,
  type InstanceMove,
  type InstanceRecord,
  type InstanceRepository,
  MAPPING_STATES,
  VOLUME_STATES,
  type VolumeRepository,
} from '@basalt/db';
import {
  ConflictError,
  errorMessage,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
} from '@basalt/errors';
import { type Flavor, findFlavor } from './flavors';
import { requireProject } from './volume-api';

/** One event of os-server-external-events, as given. */
export interface ServerEvent {
  readonly name: string;
  readonly server_uuid: string;
  readonly tag?: string;
  readonly status?: string;
}

/** The event as Nova answers it: with its own outcome. */
export interface ServerEventResult extends ServerEvent {
  readonly status: string;
  readonly code: 200 | 404 | 422;
}

export interface CreateServerRequest {
  readonly name: string;
  readonly flavorRef: string;
  readonly imageRef: string;
  readonly tags?: readonly string[];
  readonly trustedCerts?: readonly string[];
}

const DEVICE = /^\/dev\/vd[b-z]$/;
const moves = INSTANCE_STATES.movesOf('api');
const volumeMoves = VOLUME_STATES.movesOf('api');
/** The delete of an instance keeps its VM state: one move per state it may be deleted from. */
const DELETE_FROM = {
  building: moves.deleteBuilding,
  active: moves.deleteActive,
  error: moves.deleteError,
} as const;

/**
 * The compute API's decisions (nova's compute/api.py): check, write the first state change by
 * compare-and-swap, then cast; a cast that cannot be sent undoes the state change.
 */
export class ComputeApi {
  constructor(
    private readonly deps: {
      readonly instances: InstanceRepository;
      readonly images: ImageRepository;
      readonly volumes: VolumeRepository;
      readonly mappings: BlockDeviceMappingRepository;
      readonly actions: InstanceActionRepository;
      readonly scheduler: SchedulerRpcApi;
      readonly compute: ComputeRpcApi;
    },
  ) {}

  async create(ctx: RequestContext, request: CreateServerRequest): Promise<InstanceRecord> {
    const projectId = requireProject(ctx);
    const flavor = findFlavor(request.flavorRef);
    if (!flavor) throw new InvalidInputError(`Flavor ${request.flavorRef} could not be found.`);
    const image = await this.deps.images.findVisible(request.imageRef, { projectId, isAdmin: ctx.isAdmin });
    if (!image) throw new InvalidInputError(`Image ${request.imageRef} could not be found.`);
    if (image.status !== 'active') {
      throw new InvalidInputError(`Image ${image.id} is not active.`);
    }
    checkImageFits(flavor, image);
    const instance = await this.deps.instances.create({
      projectId,
      userId: ctx.userId ?? projectId,
      displayName: request.name,
      flavorId: flavor.id,
      memoryMb: flavor.ram,
      vcpus: flavor.vcpus,
      rootGb: flavor.disk,
      ephemeralGb: flavor.ephemeral,
      imageId: image.id,
      ...(request.tags ? { tags: request.tags } : {}),
      ...(request.trustedCerts ? { trustedCerts: request.trustedCerts } : {}),
    });
    try {
      await this.deps.scheduler.run_instance(ctx, {
        instance_uuid: instance.id,
        memory_mb: flavor.ram,
        vcpus: flavor.vcpus,
        // a 0 GB root is the image's size: at least one GB of the host's disk
        root_gb: Math.max(flavor.disk, Math.ceil((image.virtualSize ?? 0) / 2 ** 30)),
        ephemeral_gb: flavor.ephemeral,
      });
    } catch (error) {
      await this.deps.instances.transition(instance.id, moves.fail, {
        faultMessage: `could not reach the scheduler: ${errorMessage(error)}`,
      });
      throw error;
    }
    return instance;
  }

  /** A server of the caller's project (an admin's, of any project); any other is not found. */
  async get(ctx: RequestContext, id: string): Promise<InstanceRecord> {
    const instance = await this.deps.instances.find(id);
    if (!instance || (instance.projectId !== requireProject(ctx) && !ctx.isAdmin)) {
      throw new NotFoundError(`Instance ${id} could not be found.`);
    }
    return instance;
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    const current = await this.get(ctx, id);
    const move = current.vmState === 'deleted' ? undefined : DELETE_FROM[current.vmState];
    const instance = await this.move(current, move, 'delete');
    // never placed: no host holds anything of it
    if (!instance.host) {
      await this.deps.instances.transition(id, moves.finishDelete);
      return;
    }
    // a delete that cannot be sent stays `deleting`; the compute host finishes it when it starts
    await this.deps.compute.terminate_instance(ctx, instance.host, { instance_uuid: id });
  }

  async reboot(ctx: RequestContext, id: string, type: RebootType): Promise<void> {
    const instance = await this.get(ctx, id);
    const move =
      type === 'SOFT'
        ? moves.reboot
        : instance.vmState === 'error'
          ? moves.rebootHardFromError
          : moves.rebootHard;
    const moved = await this.move(instance, move, 'reboot');
    try {
      await this.deps.compute.reboot_instance(ctx, moved.host as string, {
        instance_uuid: id,
        reboot_type: type,
      });
    } catch (error) {
      await this.deps.instances.transition(id, moves.rebooted);
      throw error;
    }
  }

  async attachVolume(
    ctx: RequestContext,
    serverId: string,
    volumeId: string,
    device: string | undefined,
    tag?: string,
  ): Promise<BlockDeviceMapping> {
    // independent reads, side by side: nothing is shown of the volume unless the instance is the caller's
    const [instance, volume, mappings] = await Promise.all([
      this.get(ctx, serverId),
      this.deps.volumes.find(volumeId),
      this.deps.mappings.forInstance(serverId),
    ]);
    this.requireIdle(instance, 'attach_volume');
    if (!volume || volume.projectId !== instance.projectId) {
      throw new NotFoundError(`Volume ${volumeId} could not be found.`);
    }
    if (volume.status !== 'available') {
      throw new InvalidStateError(
        `Invalid volume: volume ${volumeId} status must be 'available', but it is '${volume.status}'.`,
      );
    }
    if (
      device !== undefined &&
      (!DEVICE.test(device) || (device === '/dev/vdb' && instance.ephemeralGb > 0))
    ) {
      throw new InvalidInputError(`The supplied device path (${device}) is invalid.`);
    }
    const mapping = await this.deps.mappings.reserve({
      instanceUuid: serverId,
      volumeId,
      deviceName: device ?? nextDevice(instance, mappings),
      ...(tag !== undefined ? { tag } : {}),
    });
    try {
      await this.deps.compute.attach_volume(ctx, instance.host as string, {
        instance_uuid: serverId,
        volume_id: volumeId,
        mountpoint: mapping.deviceName,
      });
    } catch (error) {
      await this.deps.mappings.remove(mapping.id);
      await this.deps.volumes.transition(volumeId, volumeMoves.unreserve, { attachStatus: 'detached' });
      throw error;
    }
    return mapping;
  }

  async detachVolume(ctx: RequestContext, serverId: string, volumeId: string): Promise<void> {
    const instance = await this.get(ctx, serverId);
    const mapping = await this.mapping(serverId, volumeId);
    this.requireIdle(instance, 'detach_volume');
    await this.deps.mappings.beginDetach(mapping);
    try {
      await this.deps.compute.detach_volume(ctx, instance.host as string, {
        instance_uuid: serverId,
        volume_id: volumeId,
      });
    } catch (error) {
      await this.deps.mappings.transition(mapping.id, MAPPING_STATES.moves.rollDetaching);
      await this.deps.volumes.transition(volumeId, volumeMoves.rollDetaching, { attachStatus: 'attached' });
      throw error;
    }
  }

  /**
   * Events other services send about servers (nova's external_instance_event). `volume-extended`
   * starts the instance action `extend_volume` under this request and has the server's host
   * resize the disk of the volume the tag names; other events concern networks, which Basalt's
   * servers have none of, so nothing is done for them. A server that does not exist is a 404 of
   * its own, one on no host a 422.
   */
  async externalEvents(ctx: RequestContext, events: readonly ServerEvent[]): Promise<ServerEventResult[]> {
    const results: ServerEventResult[] = [];
    for (const event of events) {
      const instance = await this.deps.instances.find(event.server_uuid);
      if (!instance) {
        results.push({ ...event, status: 'failed', code: 404 });
        continue;
      }
      if (!instance.host) {
        results.push({ ...event, status: 'failed', code: 422 });
        continue;
      }
      if (event.name === 'volume-extended' && event.tag !== undefined) {
        await this.deps.actions.start({
          instanceUuid: instance.id,
          action: INSTANCE_ACTIONS.extendVolume,
          requestId: ctx.requestId,
          userId: ctx.userId ?? requireProject(ctx),
          projectId: requireProject(ctx),
        });
        await this.deps.compute.extend_volume(ctx, instance.host, {
          instance_uuid: instance.id,
          volume_id: event.tag,
        });
      }
      results.push({ ...event, status: event.status ?? 'completed', code: 200 });
    }
    return results;
  }

  async mappings(ctx: RequestContext, serverId: string): Promise<BlockDeviceMapping[]> {
    await this.get(ctx, serverId);
    return this.mappingsOf(serverId);
  }

  /** The volumes of a server the caller was already let see. */
  mappingsOf(serverId: string): Promise<BlockDeviceMapping[]> {
    return this.deps.mappings.forInstance(serverId);
  }

  async mapping(serverId: string, volumeId: string): Promise<BlockDeviceMapping> {
    const mapping = await this.deps.mappings.forVolume(serverId, volumeId);
    if (!mapping) {
      throw new NotFoundError(`Volume ${volumeId} is not attached to the server ${serverId}.`);
    }
    return mapping;
  }

  /** The move, or nova's 409 when the instance is not in a state it starts from. */
  private async move(
    instance: InstanceRecord,
    move: InstanceMove | undefined,
    action: string,
  ): Promise<InstanceRecord> {
    const moved = move && (await this.deps.instances.transition(instance.id, move));
    if (moved) return moved;
    const now = (await this.deps.instances.find(instance.id)) ?? instance;
    throw invalidState(now, action);
  }

  /** Volumes come and go only on a running instance with no task under way. */
  private requireIdle(instance: InstanceRecord, action: string): void {
    if (instance.vmState !== 'active' || instance.taskState !== null || !instance.host) {
      throw invalidState(instance, action);
    }
  }
}

function invalidState(instance: InstanceRecord, action: string): ConflictError {
  return new ConflictError(
    `Cannot '${action}' instance ${instance.id} while it is in ${
      instance.taskState ? `task_state ${instance.taskState}` : `vm_state ${instance.vmState}`
    }`,
  );
}

/** The first `/dev/vdX` after the instance's own disks and its volumes. */
function nextDevice(instance: InstanceRecord, mappings: readonly BlockDeviceMapping[]): string {
  const taken = new Set(['/dev/vda', ...mappings.map((m) => m.deviceName)]);
  if (instance.ephemeralGb > 0) taken.add('/dev/vdb');
  for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
    const name = `/dev/vd${String.fromCharCode(c)}`;
    if (!taken.has(name)) return name;
  }
  throw new InvalidInputError(`Server ${instance.id} has no free device name left.`);
}

/**
 * nova's _validate_flavor_image_nostatus for a root disk on the host: the flavor's memory meets
 * the image's `min_ram`; a root of N GB (0 takes the image's size) holds the image and its `min_disk`.
 */
function checkImageFits(flavor: Flavor, image: ImageRecord): void {
  if (flavor.ram < image.minRam)
    throw new InvalidInputError("Flavor's memory is too small for requested image.");
  const root = flavor.disk * 2 ** 30;
  if (root === 0) return;
  if ((image.size ?? 0) > root) {
    throw new InvalidInputError(
      `Flavor's disk is too small for requested image. Flavor disk is ${root} bytes, image is ${image.size} bytes.`,
    );
  }
  const minDisk = image.minDisk * 2 ** 30;
  if (minDisk > root) {
    throw new InvalidInputError(
      "Flavor's disk is smaller than the minimum size specified in image metadata. " +
        `Flavor disk is ${root} bytes, minimum size is ${minDisk} bytes.`,
    );
  }
}
