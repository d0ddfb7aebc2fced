import type { RequestContext } from '@basalt/context';
import type { SchedulerRpcApi, VolumeRpcApi } from '@basalt/contracts';
import {
  type AttachmentRepository,
  type QuotaLimits,
  type ServiceDirectory,
  SNAPSHOT_STATES,
  type SnapshotRepository,
  VOLUME_STATES,
  type VolumeRecord,
  type VolumeRepository,
  type VolumeTypeRepository,
} from '@basalt/db';
import {
  errorMessage,
  ForbiddenError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
} from '@basalt/errors';
import type { GlanceImage, ImageApi } from '@basalt/images';
import type { Logger } from '@basalt/log';
import { isBrokerOutage } from '@basalt/rpc';
import { checkImage, findImage, volumeImageMetadata } from './volume-images';

export interface VolumeApiOptions {
  readonly nameTemplate: string;
  readonly defaultZone: string;
  readonly quotaDefaults: QuotaLimits;
  readonly defaultVolumeType: string;
}

export interface CreateVolumeRequest {
  /** In GiB; null takes the source's size (a volume with no source must give one). */
  readonly size: number | null;
  readonly name: string | null;
  readonly description: string | null;
  readonly availabilityZone: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  /** A type's id or name; the source's type, else the default type, when null. */
  readonly volumeType: string | null;
  /** The snapshot whose data the volume starts with. */
  readonly snapshotId?: string;
  /** The volume this one is a clone of. */
  readonly sourceVolid?: string;
  /** The image (an id, a URL ending in one, or a name) written into the volume, found through `api`. */
  readonly image?: { readonly ref: unknown; readonly api: ImageApi };
}

/** os-volume_upload_image's arguments, as the API checked them. */
export interface UploadImageRequest {
  readonly name: string;
  readonly diskFormat: string;
  readonly containerFormat: string;
  readonly visibility: string;
  readonly protected: boolean;
}

/** What os-volume_upload_image answers: the volume, `uploading`, and the image it is copied into. */
export interface Upload {
  readonly volume: VolumeRecord;
  readonly image: GlanceImage;
}

/** A new volume's source as the API checked it: what it gives the new volume by default. */
interface CheckedSource {
  /** The source named, and what the new volume takes from it (Cinder copies a source's image metadata and bootable flag). */
  readonly fields: {
    readonly snapshotId?: string;
    readonly sourceVolid?: string;
    readonly bootable: boolean;
    readonly imageMetadata?: Readonly<Record<string, string>>;
  };
  readonly size: number;
  readonly host: string;
  readonly volumeType: string | null;
  readonly availabilityZone: string;
}

/** The statuses a volume may be cloned in, and a snapshot a volume made from. */
const CLONABLE = ['available', 'in-use'];

const { beginCascadeDelete } = SNAPSHOT_STATES.movesOf('api');

const {
  failCreate,
  deleteUnplaced,
  beginDelete,
  forceDeleteUnplaced,
  beginForceDelete,
  failDelete,
  cancelExtend,
  cancelExtendAttached,
  reset,
  reserve,
  unreserve,
  retypeAvailable,
  retypeInUse,
  beginUpload,
  cancelUpload,
} = VOLUME_STATES.movesOf('api');

/** What Cinder does not copy from a volume's volume_image_metadata into an image made from it. */
const IMAGE_CORE_PROPERTIES = new Set([
  'checksum',
  'container_format',
  'disk_format',
  'image_name',
  'image_id',
  'min_disk',
  'min_ram',
  'name',
  'size',
]);

/**
 * The volume API's decisions (Cinder's volume/api.py): check, write the first state change, then
 * cast. Every request's first DB write happens here, before any message is sent.
 */
export class VolumeApi {
  constructor(
    private readonly deps: {
      readonly services: ServiceDirectory;
      readonly volumes: VolumeRepository;
      readonly snapshots: SnapshotRepository;
      readonly attachments: AttachmentRepository;
      readonly types: VolumeTypeRepository;
      readonly scheduler: SchedulerRpcApi;
      readonly volumeRpc: VolumeRpcApi;
      readonly log: Logger;
    },
    private readonly options: VolumeApiOptions,
  ) {}

  async create(ctx: RequestContext, request: CreateVolumeRequest): Promise<VolumeRecord> {
    const projectId = requireProject(ctx);
    if (request.image && (request.snapshotId !== undefined || request.sourceVolid !== undefined)) {
      throw new InvalidInputError('May specify only one of snapshot, imageRef, source_volume');
    }
    const source = await this.source(ctx, request);
    const zone = request.availabilityZone ?? source?.availabilityZone ?? this.options.defaultZone;
    if (!(await this.zones()).has(zone))
      throw new InvalidInputError(`Availability zone '${zone}' is invalid.`);
    if (source && zone !== source.availabilityZone) {
      throw new InvalidInputError(
        `Invalid input received: Availability zone '${zone}' differs from the source's, '${source.availabilityZone}'.`,
      );
    }
    const size = request.size ?? source?.size;
    if (size === undefined) throw new InvalidInputError('The size of the volume is required.');
    const image = request.image ? await findImage(request.image.api, request.image.ref) : undefined;
    if (image) checkImage(image, size);
    // an image may name the type of the volumes made from it (Cinder's cinder_img_volume_type)
    const imageType = image?.cinder_img_volume_type;
    const type = await this.deps.types.get(
      request.volumeType ??
        source?.volumeType ??
        (typeof imageType === 'string' ? imageType : undefined) ??
        this.options.defaultVolumeType,
      ctx.isAdmin ? undefined : projectId,
    );
    const volume = await this.deps.volumes.createWithinQuota(
      {
        ...source?.fields,
        size,
        projectId,
        userId: ctx.userId ?? projectId,
        availabilityZone: zone,
        displayName: request.name,
        displayDescription: request.description,
        volumeType: type.id,
        metadata: request.metadata,
        ...(image ? { imageId: image.id, imageMetadata: volumeImageMetadata(image), bootable: true } : {}),
      },
      this.options.nameTemplate,
      this.options.quotaDefaults,
    );
    try {
      await this.deps.scheduler.create_volume(ctx, {
        volume_id: volume.id,
        size: volume.size,
        availability_zone: zone,
        extra_specs: type.extraSpecs,
        ...(source ? { resource_backend: source.host } : {}),
      });
    } catch (error) {
      if (!this.leftToSweep(volume.id, 'create', error)) {
        await this.deps.volumes.transition(volume.id, failCreate, {
          statusReason: `could not reach the scheduler: ${errorMessage(error)}`,
          statusRequestId: ctx.requestId,
        });
        throw error;
      }
    }
    return volume;
  }

  /**
   * The snapshot or volume a new volume is made from, if the request names one: visible to the
   * caller, in a status it can be copied in, no larger than the new volume.
   */
  private async source(
    ctx: RequestContext,
    request: CreateVolumeRequest,
  ): Promise<CheckedSource | undefined> {
    if (request.snapshotId !== undefined && request.sourceVolid !== undefined) {
      throw new InvalidInputError('Give snapshot_id or source_volid, not both.');
    }
    if (request.snapshotId !== undefined) {
      const snapshot = await this.deps.snapshots.find(request.snapshotId);
      if (!snapshot || (!ctx.isAdmin && snapshot.projectId !== requireProject(ctx)))
        throw new NotFoundError(`Snapshot ${request.snapshotId} could not be found.`);
      if (snapshot.status !== 'available') {
        throw new InvalidStateError(
          `Invalid snapshot: Originating snapshot status must be one of 'available' values, but is ${snapshot.status}.`,
        );
      }
      if (request.size !== null && request.size < snapshot.volumeSize) {
        throw new InvalidInputError(
          `Volume size '${request.size}'GB cannot be smaller than the snapshot size ${snapshot.volumeSize}GB. They must be >= original snapshot size.`,
        );
      }
      const origin = await this.deps.volumes.get(snapshot.volumeId);
      return {
        fields: { snapshotId: snapshot.id, ...inherited(origin) },
        size: snapshot.volumeSize,
        host: snapshot.host,
        volumeType: origin.volumeType,
        availabilityZone: origin.availabilityZone,
      };
    }
    if (request.sourceVolid !== undefined) {
      const origin = await this.get(ctx, request.sourceVolid);
      if (!CLONABLE.includes(origin.status) || !origin.host) {
        throw new InvalidStateError(
          `Invalid volume: Volume ${origin.id} status must be ${CLONABLE.join(' or ')}, but current status is: ${origin.status}.`,
        );
      }
      if (request.size !== null && request.size < origin.size) {
        throw new InvalidInputError(
          `Volume size '${request.size}'GB cannot be smaller than original volume size ${origin.size}GB. They must be >= original volume size.`,
        );
      }
      return {
        fields: { sourceVolid: origin.id, ...inherited(origin) },
        size: origin.size,
        host: origin.host,
        volumeType: origin.volumeType,
        availabilityZone: origin.availabilityZone,
      };
    }
    return undefined;
  }

  /**
   * Cinder's copy_volume_to_image: the image is created through the image API (with the
   * volume's image properties), the volume becomes `uploading` and its host is asked to copy it.
   */
  async uploadToImage(
    ctx: RequestContext,
    id: string,
    request: UploadImageRequest,
    images: ImageApi,
  ): Promise<Upload> {
    const volume = await this.get(ctx, id);
    const refused = () =>
      new InvalidStateError(
        `Invalid volume: Volume ${id} status must be available, but current status is: ${volume.status}.`,
      );
    if (!beginUpload.from.includes(volume.status) || !volume.host) throw refused();
    const properties = Object.fromEntries(
      Object.entries(volume.imageMetadata ?? {}).filter(([key]) => !IMAGE_CORE_PROPERTIES.has(key)),
    );
    const image = await images.create({
      ...properties,
      name: request.name,
      disk_format: request.diskFormat,
      container_format: request.containerFormat,
      visibility: request.visibility,
      protected: request.protected,
    });
    const uploading = await this.deps.volumes.transition(id, beginUpload, {
      uploadImageId: image.id,
      statusReason: null,
    });
    if (!uploading) {
      await images.delete(image.id);
      throw refused();
    }
    try {
      await this.deps.volumeRpc.copy_volume_to_image(ctx, volume.host, {
        volume_id: id,
        image_meta: {
          id: image.id,
          disk_format: String(image.disk_format),
          container_format: String(image.container_format),
        },
      });
    } catch (error) {
      if (!this.leftToSweep(id, 'upload to image', error)) {
        await this.deps.volumes.transition(id, cancelUpload, { uploadImageId: null });
        await images.delete(image.id);
        throw error;
      }
    }
    return { volume: uploading, image };
  }

  /** A volume the caller may see: its own project's, or any for an admin (as Cinder's policy). */
  async get(ctx: RequestContext, id: string): Promise<VolumeRecord> {
    const volume = await this.deps.volumes.find(id);
    if (!volume || (!ctx.isAdmin && volume.projectId !== requireProject(ctx))) {
      throw new NotFoundError(`Volume ${id} could not be found.`);
    }
    return volume;
  }

  /**
   * `force`: an admin's os-force_delete, which also takes a volume stuck in a transitional state.
   * A volume with snapshots is refused, unless `cascade`: then its snapshots go with it.
   */
  async delete(
    ctx: RequestContext,
    id: string,
    options: { force?: boolean; cascade?: boolean } = {},
  ): Promise<void> {
    const { force = false, cascade = false } = options;
    const volume = await this.get(ctx, id);
    if (!volume.host) {
      // never reached a host: nothing to clean up on a worker (false: placed since the read; no
      // snapshot either: they need a host)
      if (await this.deps.volumes.deleteUnplaced(id, force ? forceDeleteUnplaced : deleteUnplaced)) return;
    }
    // a host, once recorded, stays: the delete goes to the host the swap found. A create in
    // progress there loses its finishCreate swap to this one, and the delete, run after it under
    // the worker's per-volume lock, removes what it made. A volume with snapshots is refused
    // unless the cascade takes them too, in the same transaction
    const deleting = await this.deps.volumes.beginDelete(
      id,
      force ? beginForceDelete : beginDelete,
      cascade ? beginCascadeDelete : undefined,
    );
    const host = deleting.host as string;
    try {
      await this.deps.volumeRpc.delete_volume(ctx, host, { volume_id: id });
    } catch (error) {
      if (this.leftToSweep(id, 'delete', error)) return;
      await this.deps.volumes.transition(id, failDelete, {
        statusReason: `the delete could not be sent to ${host}: ${errorMessage(error)}`,
        statusRequestId: ctx.requestId,
      });
      throw error;
    }
  }

  /** Cinder's os-force_delete: an admin deletes from any state but an attached or transitional one. */
  async forceDelete(ctx: RequestContext, id: string): Promise<void> {
    await this.delete(ctx, id, { force: true });
  }

  /** os-reserve / os-unreserve: a volume held for an attach that has not begun, and let go. */
  async reserve(ctx: RequestContext, id: string, hold: boolean): Promise<void> {
    await this.get(ctx, id);
    await this.deps.volumes.transitionOrThrow(id, hold ? reserve : unreserve);
  }

  /**
   * Cinder's os-attach: the caller (not a compute host of Basalt's) says an instance or a host uses
   * the volume at `mountpoint`; the attachment is recorded, with no connection behind it.
   */
  async attach(
    ctx: RequestContext,
    id: string,
    request: { instanceUuid: string | null; hostName: string | null; mountpoint: string; mode: 'rw' | 'ro' },
  ): Promise<void> {
    const volume = await this.get(ctx, id);
    if (volume.readOnly && request.mode === 'rw') {
      throw new InvalidInputError(`Invalid attaching mode '${request.mode}' for volume ${id}.`);
    }
    const recorded = await this.deps.attachments.record(id, {
      instanceUuid: request.instanceUuid,
      mountpoint: request.mountpoint,
      host: request.hostName,
    });
    if (!recorded) {
      throw new InvalidStateError(
        `Invalid volume: Volume ${id} status must be available or attaching to attach, but current status is: ${(await this.get(ctx, id)).status}.`,
      );
    }
  }

  /**
   * os-detach, or an admin's os-force_detach (`force`): ends an attachment os-attach recorded. One
   * a compute host connected is the compute API's to detach, which disconnects it first.
   */
  async detach(
    ctx: RequestContext,
    id: string,
    attachmentId: string | undefined,
    force: boolean,
  ): Promise<void> {
    if (force) requireAdmin(ctx);
    const volume = await this.get(ctx, id);
    const live = (await this.deps.attachments.live(id)).filter((a) => a.attachStatus === 'attached');
    const named = attachmentId === undefined ? live : live.filter((a) => a.id === attachmentId);
    if (named.length === 0) {
      if (attachmentId !== undefined)
        throw new NotFoundError(`Volume attachment ${attachmentId} could not be found.`);
      // as in Cinder, detaching a volume that is attached to nothing succeeds (a repeated detach)
      if (volume.status === 'available') return;
      throw new InvalidStateError(`Invalid volume: Volume ${id} is not attached.`);
    }
    if (named.length > 1) {
      throw new InvalidInputError(`Volume ${id} has more than one attachment: name one with attachment_id.`);
    }
    const [attachment] = named as [(typeof named)[number]];
    if (attachment.initiator !== null) {
      throw new InvalidStateError(
        `Invalid volume: attachment ${attachment.id} of volume ${id} is a compute host's connection; detach it through the compute API.`,
      );
    }
    if (!(await this.deps.attachments.endRecorded(id, attachment.id, force))) {
      throw new InvalidStateError(
        `Invalid volume: Volume ${id} status must be in-use to detach, but current status is: ${volume.status}.`,
      );
    }
  }

  /**
   * os-retype without migration: the new type is taken when the volume's host satisfies it, as
   * the scheduler judges, and the type's own quota takes the volume; a volume that would have to
   * move is refused (no migration yet).
   */
  async retype(ctx: RequestContext, id: string, newType: string, migrationPolicy: string): Promise<void> {
    const volume = await this.get(ctx, id);
    const type = await this.deps.types.get(newType, ctx.isAdmin ? undefined : requireProject(ctx));
    if (type.id === volume.volumeType) {
      throw new InvalidInputError(
        `Retype cannot change the type: volume ${id} is already of type ${type.name}.`,
      );
    }
    if (volume.status !== 'available' && volume.status !== 'in-use') {
      throw new InvalidStateError(
        `Invalid volume: Volume ${id} status must be available or in-use, but current status is: ${volume.status}.`,
      );
    }
    const fits =
      volume.host !== null &&
      (await this.deps.scheduler.backend_passes_filters(ctx, {
        host: volume.host,
        availability_zone: volume.availabilityZone,
        extra_specs: type.extraSpecs,
      }));
    if (!fits) {
      throw new InvalidInputError(
        migrationPolicy === 'on-demand'
          ? `Volume ${id} would have to migrate to take type ${type.name}, and Basalt does not migrate volumes.`
          : `No valid host was found for volume ${id} of type ${type.name} without migration.`,
      );
    }
    await this.deps.volumes.retypeWithinQuota(
      volume,
      type.id,
      volume.status === 'available' ? retypeAvailable : retypeInUse,
      this.options.quotaDefaults,
    );
  }

  /**
   * `attachedToo`: the request's microversion (3.42) lets an in-use volume grow too, which its
   * volume host finishes by telling the compute API, whose host resizes the guest's disk.
   */
  async extend(ctx: RequestContext, id: string, newSize: number, attachedToo = false): Promise<void> {
    const volume = await this.get(ctx, id);
    const attached = attachedToo && volume.status === 'in-use';
    if (newSize <= volume.size) {
      throw new InvalidInputError(
        `New size for extend must be greater than current size. (current: ${volume.size}, extended: ${newSize}).`,
      );
    }
    await this.deps.volumes.beginExtendWithinQuota(volume, newSize, this.options.quotaDefaults, attached);
    try {
      await this.deps.volumeRpc.extend_volume(ctx, volume.host as string, {
        volume_id: id,
        new_size: newSize,
      });
    } catch (error) {
      if (this.leftToSweep(id, 'extend', error)) return;
      // nothing was changed on the host: the volume is as it was
      await this.deps.volumes.transition(id, attached ? cancelExtendAttached : cancelExtend, {
        extendTo: null,
      });
      throw error;
    }
  }

  /**
   * Whether a cast that failed for want of the broker is left to the receiver's sweep: the state
   * change is committed (with what the operation needs: size and zone, the extend's size), so the
   * request stands and is carried out once the broker is back.
   */
  private leftToSweep(id: string, what: string, error: unknown): boolean {
    return leftToSweep(this.deps.log, { volume_id: id }, what, error);
  }

  async resetStatus(ctx: RequestContext, id: string, status: string, attachStatus?: string): Promise<void> {
    const target = reset.to.find((s) => s === status);
    if (!target) {
      throw new InvalidInputError(`Invalid status '${status}'; must be one of ${reset.to.join(', ')}.`);
    }
    if (attachStatus !== undefined && attachStatus !== 'attached' && attachStatus !== 'detached') {
      throw new InvalidInputError(`Invalid attach_status '${attachStatus}'; must be attached or detached.`);
    }
    await this.get(ctx, id);
    await this.deps.volumes.transitionOrThrow(id, VOLUME_STATES.toward(reset, target), {
      statusReason: null,
      ...(attachStatus ? { attachStatus } : {}),
    });
  }

  /** Zones that have a volume service, plus the configured default. */
  private async zones(): Promise<Set<string>> {
    const services = await this.deps.services.list();
    return new Set([
      this.options.defaultZone,
      ...services.filter((s) => s.binary === 'basalt-volume').map((s) => s.availabilityZone),
    ]);
  }
}

/** What a volume made from `origin` (or its snapshot) takes from it. */
function inherited(origin: VolumeRecord) {
  return {
    bootable: origin.bootable,
    ...(origin.imageMetadata ? { imageMetadata: origin.imageMetadata } : {}),
  };
}

/** A cast that failed for want of the broker, logged as left to the receiver's sweep; false for any other failure. */
export function leftToSweep(
  log: Logger,
  subject: Readonly<Record<string, string>>,
  what: string,
  error: unknown,
): boolean {
  if (!isBrokerOutage(error)) return false;
  log.warn({ ...subject, err: errorMessage(error) }, `${what} accepted, its cast left to the sweep`);
  return true;
}

export function requireProject(ctx: RequestContext): string {
  if (!ctx.projectId) throw new ForbiddenError('A project-scoped token is required.');
  return ctx.projectId;
}

export function requireAdmin(ctx: RequestContext): void {
  if (!ctx.isAdmin) throw new ForbiddenError('Policy does not allow this action to be performed.');
}
