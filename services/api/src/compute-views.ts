import { createHash } from 'node:crypto';
import type {
  BlockDeviceMapping,
  ImageRecord,
  InstanceAction,
  InstanceActionEvent,
  InstanceRecord,
} from '@basalt/db';
import { instanceName, serverStatus } from '@basalt/db';
import type { Flavor } from './flavors';
import { nextQuery } from './list-query';
import { atLeast as versionAtLeast } from './versions';

/** What a view needs of the request: where links point, the microversion, who asks. */
export interface ViewContext {
  readonly baseUrl: string;
  readonly projectId: string;
  readonly version: string;
  readonly isAdmin: boolean;
  /** `[compute] instance_name_template`. */
  readonly nameTemplate: string;
  /** Whether the flavor extra specs policy lets the caller see them (2.61's flavor views). */
  readonly flavorExtraSpecs: boolean;
}

const atLeast = (v: ViewContext, min: string) => versionAtLeast(v.version, min);
/** Nova's timestamps: seconds, `Z`. */
const stamp = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;
/** A naive datetime as oslo's to_primitive writes it (`%Y-%m-%dT%H:%M:%S.%f`, no zone). */
const naiveStamp = (d: Date) => `${d.toISOString().slice(0, 23)}000`;

export function links(v: ViewContext, collection: string, id: string) {
  return [
    { rel: 'self', href: `${v.baseUrl}/v2.1/${v.projectId}/${collection}/${id}` },
    { rel: 'bookmark', href: `${v.baseUrl}/${v.projectId}/${collection}/${id}` },
  ];
}

/** Basalt's flavors are nova's defaults, which have no description (2.55 shows it: null). */
const flavorDescription = (v: ViewContext) => (atLeast(v, '2.55') ? { description: null } : {});

/**
 * nova's next link of a full page: the request's own collection (with the project only when the
 * request's URL names it), the query's parameters in name order, the marker replaced.
 */
export function nextLink(
  v: Pick<ViewContext, 'baseUrl' | 'projectId'>,
  requestUrl: string,
  collection: string,
  query: Record<string, unknown>,
  marker: string,
) {
  const project = v.projectId && requestUrl.includes(v.projectId) ? `/${v.projectId}` : '';
  return { rel: 'next', href: `${v.baseUrl}/v2.1${project}/${collection}?${nextQuery(query, marker, true)}` };
}

/**
 * nova's _get_collection_links: a next link, marked with the page's last item, when the page is
 * as full as it may be (`limit` items, none for a limit of 0); otherwise, or with no limit, none.
 */
export function collectionLinks(
  v: Pick<ViewContext, 'baseUrl' | 'projectId'>,
  requestUrl: string,
  collection: string,
  query: Record<string, unknown>,
  markers: readonly string[],
  limit: number | undefined,
) {
  const last = markers.at(-1);
  if (last === undefined || markers.length !== limit) return undefined;
  return [nextLink(v, requestUrl, collection, query, last)];
}

export function flavorSummary(v: ViewContext, f: Flavor) {
  return { id: f.id, name: f.name, links: links(v, 'flavors', f.id), ...flavorDescription(v) };
}

export function flavorDetail(v: ViewContext, f: Flavor) {
  return {
    id: f.id,
    name: f.name,
    ram: f.ram,
    disk: f.disk,
    vcpus: f.vcpus,
    links: links(v, 'flavors', f.id),
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': false,
    'os-flavor-access:is_public': true,
    swap: '',
    rxtx_factor: 1.0,
    ...flavorDescription(v),
    // nova's default flavors have no extra specs
    ...(atLeast(v, '2.61') && v.flavorExtraSpecs ? { extra_specs: {} } : {}),
  };
}

export function serverSummary(v: ViewContext, i: InstanceRecord) {
  return { id: i.id, name: i.displayName, links: links(v, 'servers', i.id) };
}

/** nova's answer to a server create (no adminPass: Basalt's guests have no password to set). */
export function serverCreated(v: ViewContext, i: InstanceRecord) {
  return { id: i.id, links: links(v, 'servers', i.id), 'OS-DCF:diskConfig': 'MANUAL' };
}

/**
 * A server as nova's `servers/{id}` (`alone`) and `servers/detail` show it at the request's
 * microversion (2.1 … 2.73).
 */
export function serverDetail(
  v: ViewContext,
  i: InstanceRecord,
  flavor: Flavor | undefined,
  mappings: readonly BlockDeviceMapping[],
  alone = false,
) {
  const status = serverStatus(i, i.deleted);
  const bookmark = (collection: string, id: string) => [
    { rel: 'bookmark', href: `${v.baseUrl}/${v.projectId}/${collection}/${id}` },
  ];
  const flavorView = atLeast(v, '2.47')
    ? flavor
      ? {
          original_name: flavor.name,
          vcpus: flavor.vcpus,
          ram: flavor.ram,
          disk: flavor.disk,
          ephemeral: flavor.ephemeral,
          swap: 0,
          extra_specs: {},
        }
      : {}
    : { id: i.flavorId, links: bookmark('flavors', i.flavorId) };
  const server: Record<string, unknown> = {
    id: i.id,
    name: i.displayName,
    status,
    tenant_id: i.projectId,
    user_id: i.userId,
    metadata: {},
    hostId: i.host ? hostId(i.projectId, i.host) : '',
    image: { id: i.imageId, links: bookmark('images', i.imageId) },
    flavor: flavorView,
    created: stamp(i.createdAt),
    updated: stamp(i.updatedAt),
    addresses: {},
    accessIPv4: '',
    accessIPv6: '',
    links: links(v, 'servers', i.id),
    'OS-DCF:diskConfig': 'MANUAL',
    key_name: null,
    config_drive: '',
    'OS-EXT-AZ:availability_zone': 'nova',
    'OS-EXT-STS:vm_state': i.vmState,
    'OS-EXT-STS:task_state': i.taskState,
    'OS-EXT-STS:power_state': i.vmState === 'active' ? 1 : 0,
    'OS-SRV-USG:launched_at': i.launchedAt ? naiveStamp(i.launchedAt) : null,
    'OS-SRV-USG:terminated_at': null,
    'os-extended-volumes:volumes_attached': mappings.map((m) => ({
      id: m.volumeId,
      ...(atLeast(v, '2.3') ? { delete_on_termination: false } : {}),
    })),
  };
  if (status === 'ACTIVE' || status === 'BUILD') server.progress = 0;
  if (status === 'ERROR' && i.faultMessage) {
    server.fault = { code: 500, created: stamp(i.updatedAt), message: i.faultMessage };
  }
  // nova names security groups only for servers with ports; these have no network
  if (v.isAdmin) {
    server['OS-EXT-SRV-ATTR:host'] = i.host;
    server['OS-EXT-SRV-ATTR:instance_name'] = instanceName(v.nameTemplate, i.seq);
    server['OS-EXT-SRV-ATTR:hypervisor_hostname'] = i.host;
    if (atLeast(v, '2.3')) {
      server['OS-EXT-SRV-ATTR:reservation_id'] = `r-${i.id.slice(0, 8)}`;
      server['OS-EXT-SRV-ATTR:launch_index'] = 0;
      server['OS-EXT-SRV-ATTR:kernel_id'] = '';
      server['OS-EXT-SRV-ATTR:ramdisk_id'] = '';
      server['OS-EXT-SRV-ATTR:hostname'] = hostname(i.displayName);
      server['OS-EXT-SRV-ATTR:root_device_name'] = '/dev/vda';
      server['OS-EXT-SRV-ATTR:user_data'] = null;
    }
  }
  if (atLeast(v, '2.9')) server.locked = false;
  // nova's HostStatus: NONE, the empty string, for a server on no host
  if (atLeast(v, '2.16') && v.isAdmin) server.host_status = i.host ? 'UP' : '';
  if (atLeast(v, '2.19')) server.description = null;
  if (atLeast(v, '2.26')) server.tags = [...i.tags];
  if (atLeast(v, '2.63')) server.trusted_image_certificates = i.trustedCerts ? [...i.trustedCerts] : null;
  // 2.73: why the server is locked; no server is locked here
  if (atLeast(v, '2.73')) server.locked_reason = null;
  // 2.71: the groups of a server shown alone; Basalt has no server groups, so it is in none
  if (atLeast(v, '2.71') && alone) server.server_groups = [];
  return server;
}

/** A volume attachment; its tag (given since 2.49) is shown from 2.70. */
export function volumeAttachment(version: string, m: BlockDeviceMapping) {
  return {
    id: m.volumeId,
    device: m.deviceName,
    serverId: m.instanceUuid,
    volumeId: m.volumeId,
    ...(versionAtLeast(version, '2.70') ? { tag: m.tag } : {}),
  };
}

/** nova's generate_hostid: a hash of project and host, so users can tell co-located servers apart without learning host names. */
function hostId(projectId: string, host: string): string {
  return createHash('sha224').update(`${projectId}${host}`).digest('hex');
}

function hostname(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63) || 'server'
  );
}

/** Glance v2's image document: its core attributes, then its properties as attributes too. */
export function imageView(i: ImageRecord) {
  return {
    ...i.properties,
    id: i.id,
    name: i.name,
    status: i.status,
    visibility: i.visibility,
    protected: i.protected,
    os_hidden: false,
    checksum: i.checksum,
    os_hash_algo: i.osHashValue ? 'sha512' : null,
    os_hash_value: i.osHashValue,
    owner: i.owner,
    size: i.size,
    virtual_size: i.virtualSize,
    min_disk: i.minDisk,
    min_ram: i.minRam,
    container_format: i.containerFormat,
    disk_format: i.diskFormat,
    created_at: stamp(i.createdAt),
    updated_at: stamp(i.updatedAt),
    tags: [...i.tags],
    self: `/v2/images/${i.id}`,
    file: `/v2/images/${i.id}/file`,
    schema: '/v2/schemas/image',
  };
}

/** Nova's instance-action times: microseconds, no zone. */
const actionTime = (d: Date) => `${d.toISOString().slice(0, 23)}000`;

/** An instance action as os-instance-actions lists and shows it; 2.58 adds when it last changed. */
export function instanceAction(version: string, a: InstanceAction) {
  return {
    action: a.action,
    instance_uuid: a.instanceUuid,
    message: a.message,
    project_id: a.projectId,
    request_id: a.requestId,
    start_time: actionTime(a.startTime),
    user_id: a.userId,
    ...(versionAtLeast(version, '2.58') ? { updated_at: actionTime(a.updatedAt) } : {}),
  };
}

/**
 * One of an action's events: its traceback (and from 2.62 its host) only for those the events
 * policy lets see them; from 2.62 everyone sees the hostId, the host hashed with the action's
 * project (empty when the host is not known).
 */
export function instanceActionEvent(
  version: string,
  e: InstanceActionEvent,
  projectId: string,
  full: boolean,
) {
  const v262 = versionAtLeast(version, '2.62');
  return {
    event: e.event,
    start_time: actionTime(e.startTime),
    finish_time: e.finishTime ? actionTime(e.finishTime) : null,
    result: e.result,
    ...(full ? { traceback: e.traceback } : {}),
    ...(v262 && full ? { host: e.host } : {}),
    ...(v262 ? { hostId: e.host ? hostId(projectId, e.host) : '' } : {}),
  };
}
