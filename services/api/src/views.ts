import type { AttachmentRecord, SnapshotRecord, VolumeRecord, VolumeTypeRecord } from '@basalt/db';
import type { GlanceImage } from '@basalt/images';
import { atLeast } from './versions';

/** Who asks and at which microversion: what decides the fields a view carries. */
export interface ViewContext {
  readonly isAdmin: boolean;
  readonly version: string;
}

/**
 * The volume as Cinder v3's view builder shows it at the request's microversion (cinder/api/v3/
 * views/volumes.py). `extended` adds what Cinder's controller extensions add to show and list (the
 * project; for admins the host and migration attributes) — not to create or update answers.
 */
export function volumeDetail(
  v: VolumeRecord,
  typeName: string | null,
  attachments: readonly AttachmentRecord[],
  links: (id: string) => unknown[],
  view: ViewContext,
  extended: { readonly host: string | null } | undefined,
  serviceUuid: string | null,
) {
  const at = (version: string) => atLeast(view.version, version);
  return {
    id: v.id,
    status: v.status,
    size: v.size,
    availability_zone: v.availabilityZone,
    created_at: v.createdAt.toISOString(),
    updated_at: v.updatedAt.toISOString(),
    name: v.displayName,
    description: v.displayDescription,
    volume_type: typeName,
    snapshot_id: v.snapshotId,
    source_volid: v.sourceVolid,
    // Cinder shows its visible admin metadata (the read-only flag) among the user's, once set
    metadata: v.readOnly === null ? v.metadata : { ...v.metadata, readonly: v.readOnly ? 'True' : 'False' },
    links: links(v.id),
    user_id: v.userId,
    bootable: String(v.bootable),
    encrypted: false,
    replication_status: null,
    consistencygroup_id: null,
    multiattach: false,
    attachments: attachments
      .filter((a) => a.attachStatus === 'attached')
      .map((a) => ({
        id: v.id,
        attachment_id: a.id,
        volume_id: v.id,
        server_id: a.instanceUuid,
        host_name: view.isAdmin ? a.connectorHost : null,
        device: a.mountpoint,
        attached_at: a.attachedAt?.toISOString() ?? null,
      })),
    ...(view.isAdmin ? { migration_status: null } : {}),
    ...(at('3.13') ? { group_id: null } : {}),
    ...(view.isAdmin && at('3.21') ? { provider_id: null } : {}),
    // shared_targets tells a compute host whether to serialise its attach and detach of volumes
    // behind one target (one iSCSI session shared by several volumes). Basalt's tgt target
    // exports each volume as a target of its own (iqn…volume-%08x, LUN 1), so no two volumes ever
    // share one: false is the truth for this target driver, as it is for Cinder's tgt.
    ...(at('3.48') ? { shared_targets: false, service_uuid: serviceUuid } : {}),
    // Cinder's policies: the project is the project's to read, host and migration an admin's
    ...(extended ? { 'os-vol-tenant-attr:tenant_id': v.projectId } : {}),
    // the volume image metadata extension adds it to show and list, when the volume has any
    ...(extended && v.imageMetadata && Object.keys(v.imageMetadata).length > 0
      ? { volume_image_metadata: v.imageMetadata }
      : {}),
    ...(view.isAdmin && extended
      ? {
          'os-vol-host-attr:host': extended.host,
          'os-vol-mig-status-attr:migstat': null,
          'os-vol-mig-status-attr:name_id': null,
        }
      : {}),
  };
}

/**
 * os-volume_upload_image's answer (cinder/volume/api.py copy_volume_to_image): the volume, its
 * type as the object Cinder serialises, and the image; visibility and protected from 3.1.
 */
export function uploadView(
  upload: { readonly volume: VolumeRecord; readonly image: GlanceImage },
  type: VolumeTypeRecord | null,
  version: string,
) {
  const { volume, image } = upload;
  return {
    id: volume.id,
    updated_at: volume.updatedAt.toISOString(),
    status: 'uploading',
    display_description: volume.displayDescription,
    size: volume.size,
    volume_type: type && {
      created_at: type.createdAt.toISOString(),
      updated_at: type.updatedAt.toISOString(),
      deleted_at: null,
      deleted: false,
      id: type.id,
      name: type.name,
      description: type.description,
      is_public: type.isPublic,
      projects: [],
      extra_specs: type.extraSpecs,
      qos_specs_id: null,
    },
    image_id: image.id,
    container_format: image.container_format,
    disk_format: image.disk_format,
    image_name: image.name ?? null,
    ...(atLeast(version, '3.1') ? { visibility: image.visibility, protected: image.protected } : {}),
  };
}

export function volumeSummary(v: VolumeRecord, links: (id: string) => unknown[]) {
  return { id: v.id, name: v.displayName, links: links(v.id) };
}

/**
 * The snapshot as Cinder v3's view builder shows it (cinder/api/v3/views/snapshots.py): `summary`
 * for the plain list; create, update and show add `group_snapshot_id` from 3.14 and `user_id` from
 * 3.41; `extended` (show and the detailed list) adds the extended attributes (progress, project).
 */
export function snapshotView(s: SnapshotRecord, view: ViewContext | undefined, extended = false) {
  const at = (version: string) => view !== undefined && atLeast(view.version, version);
  return {
    id: s.id,
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
    name: s.displayName,
    description: s.displayDescription,
    volume_id: s.volumeId,
    status: s.status,
    size: s.volumeSize,
    metadata: s.metadata,
    ...(at('3.14') ? { group_snapshot_id: null } : {}),
    ...(at('3.41') ? { user_id: s.userId } : {}),
    ...(extended
      ? {
          'os-extended-snapshot-attributes:progress': s.progress,
          'os-extended-snapshot-attributes:project_id': s.projectId,
        }
      : {}),
  };
}
