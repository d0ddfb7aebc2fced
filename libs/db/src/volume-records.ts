import { date, type Row, type StatefulTable } from './sql';
import type { AttachStatus, VolumeStatus } from './volume-states';

export interface VolumeRecord {
  readonly id: string;
  readonly seq: number;
  readonly backendName: string;
  readonly size: number;
  readonly status: VolumeStatus;
  readonly statusReason: string | null;
  readonly attachStatus: AttachStatus;
  readonly host: string | null;
  /** `backend#pool` on `host`, as the scheduler placed it. */
  readonly pool: string | null;
  readonly availabilityZone: string;
  readonly projectId: string;
  readonly userId: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly volumeType: string | null;
  /** Cinder's user metadata: string keys and values the owner sets. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly bootable: boolean;
  /** Null until os-update_readonly_flag first sets it. */
  readonly readOnly: boolean | null;
  readonly providerLocation: string | null;
  /** `CHAP <user> <password>`: a secret, never logged or shown to users. */
  readonly providerAuth: string | null;
  /** While `extending`: the size the extend grows the volume to. */
  readonly extendTo: number | null;
  /** The snapshot the volume was made from, if any. */
  readonly snapshotId: string | null;
  /** The volume this one is a clone of, if any. */
  readonly sourceVolid: string | null;
  /** The image the volume was made from, if any. */
  readonly imageId: string | null;
  /** Cinder's volume_image_metadata: the image's attributes and properties, as strings; null if none. */
  readonly imageMetadata: Readonly<Record<string, string>> | null;
  /** While `uploading`: the image the volume is copied into. */
  readonly uploadImageId: string | null;
  readonly scheduledAt: Date | null;
  readonly launchedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Columns a transition may set besides `status`. */
export interface VolumeChanges {
  readonly size?: number;
  readonly statusReason?: string | null;
  /** The request whose failure `statusReason` tells, for its user message. */
  readonly statusRequestId?: string;
  readonly attachStatus?: AttachStatus;
  readonly host?: string | null;
  readonly providerLocation?: string | null;
  readonly providerAuth?: string | null;
  readonly extendTo?: number | null;
  readonly scheduledAt?: Date;
  readonly launchedAt?: Date;
  readonly displayName?: string | null;
  readonly displayDescription?: string | null;
  readonly volumeType?: string;
  readonly projectId?: string;
  readonly userId?: string;
  readonly uploadImageId?: string | null;
}

/** The volumes table as compare-and-swap sees it. */
export const VOLUMES: StatefulTable<VolumeChanges> = {
  table: 'volumes',
  stateColumn: 'status',
  deletedState: 'deleted',
  columns: {
    size: 'size',
    statusReason: 'status_reason',
    statusRequestId: 'status_request_id',
    attachStatus: 'attach_status',
    host: 'host',
    providerLocation: 'provider_location',
    providerAuth: 'provider_auth',
    extendTo: 'extend_to',
    scheduledAt: 'scheduled_at',
    launchedAt: 'launched_at',
    displayName: 'display_name',
    displayDescription: 'display_description',
    volumeType: 'volume_type',
    projectId: 'project_id',
    userId: 'user_id',
    uploadImageId: 'upload_image_id',
  },
};

/** A volume a host took up to create or delete, with its iSCSI target number (null without one). */
export interface VolumeClaim {
  readonly volume: VolumeRecord;
  readonly targetNum: number | null;
}

export interface NewVolume {
  readonly size: number;
  readonly projectId: string;
  readonly userId: string;
  readonly availabilityZone: string;
  readonly displayName: string | null;
  readonly displayDescription: string | null;
  readonly volumeType: string | null;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly snapshotId?: string;
  readonly sourceVolid?: string;
  readonly imageId?: string;
  readonly imageMetadata?: Readonly<Record<string, string>>;
  /** Made from an image, or from a bootable volume or its snapshot. */
  readonly bootable?: boolean;
}

export function toVolume(r: Row): VolumeRecord {
  return {
    id: String(r.id),
    seq: Number(r.seq),
    backendName: String(r.backend_name),
    size: Number(r.size),
    status: r.status as VolumeStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    attachStatus: r.attach_status as AttachStatus,
    host: (r.host as string | null) ?? null,
    pool: (r.pool as string | null) ?? null,
    availabilityZone: String(r.availability_zone),
    projectId: String(r.project_id),
    userId: String(r.user_id),
    displayName: (r.display_name as string | null) ?? null,
    displayDescription: (r.display_description as string | null) ?? null,
    volumeType: (r.volume_type as string | null) ?? null,
    metadata: (r.metadata as Record<string, string> | undefined) ?? {},
    bootable: r.bootable === true,
    readOnly: r.read_only === null || r.read_only === undefined ? null : r.read_only === true,
    providerLocation: (r.provider_location as string | null) ?? null,
    providerAuth: (r.provider_auth as string | null) ?? null,
    extendTo: r.extend_to === null || r.extend_to === undefined ? null : Number(r.extend_to),
    snapshotId: (r.snapshot_id as string | null) ?? null,
    sourceVolid: (r.source_volid as string | null) ?? null,
    imageId: (r.image_id as string | null) ?? null,
    imageMetadata: (r.image_metadata as Record<string, string> | null) ?? null,
    uploadImageId: (r.upload_image_id as string | null) ?? null,
    scheduledAt: date(r.scheduled_at),
    launchedAt: date(r.launched_at),
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
  };
}

/** Claimed volumes (rows with `target_num`), each with its target number. */
export function toClaim(row: Row): VolumeClaim {
  return { volume: toVolume(row), targetNum: row.target_num === null ? null : Number(row.target_num) };
}
