import type { AttachmentRecord, VolumeRecord } from '@basalt/db';

/** The volume as Cinder v3 shows it; admins also see the host and owning project. */
export function volumeDetail(
  v: VolumeRecord,
  attachments: readonly AttachmentRecord[],
  links: (id: string) => unknown[],
  isAdmin: boolean,
) {
  return {
    id: v.id,
    name: v.displayName,
    description: v.displayDescription,
    status: v.status,
    size: v.size,
    availability_zone: v.availabilityZone,
    created_at: v.createdAt.toISOString(),
    updated_at: v.updatedAt.toISOString(),
    volume_type: v.volumeType,
    snapshot_id: null,
    source_volid: null,
    metadata: {},
    links: links(v.id),
    user_id: v.userId,
    bootable: 'false',
    encrypted: false,
    multiattach: false,
    replication_status: null,
    consistencygroup_id: null,
    migration_status: null,
    attachments: attachments
      .filter((a) => a.instanceUuid)
      .map((a) => ({
        id: a.id,
        attachment_id: a.id,
        volume_id: v.id,
        server_id: a.instanceUuid,
        host_name: a.connectorHost,
        device: a.mountpoint,
      })),
    // why a volume is in error, in words a user can act on
    status_reason: v.statusReason,
    ...(isAdmin
      ? {
          'os-vol-host-attr:host': v.host,
          'os-vol-tenant-attr:tenant_id': v.projectId,
          'os-vol-mig-status-attr:migstat': null,
          'os-vol-mig-status-attr:name_id': null,
        }
      : {}),
  };
}

export function volumeSummary(v: VolumeRecord, links: (id: string) => unknown[]) {
  return { id: v.id, name: v.displayName, links: links(v.id) };
}
