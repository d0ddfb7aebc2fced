/**
 * Which rule each route checks. A route is named by its method and its path under the API's
 * prefixes; `actions` routes pick the rule by the one key of their body, as Cinder's and Nova's
 * action controllers do; `target` names the path parameter holding the project acted on (else
 * the caller's own). `none` marks the few routes the reference itself checks no rule on.
 */
export type RouteRule =
  | string
  | { readonly rule: string; readonly target: string }
  | { readonly actions: Readonly<Record<string, string>> }
  | { readonly none: string };

export interface ApiRoutePolicies {
  /** Route prefixes whose routes need a caller, longest first. */
  readonly prefixes: readonly string[];
  readonly routes: Readonly<Record<string, RouteRule>>;
}

const VOLUME_ACTIONS = {
  'os-extend': 'volume:extend',
  'os-reset_status': 'volume_extension:volume_admin_actions:reset_status',
  'os-force_delete': 'volume_extension:volume_admin_actions:force_delete',
  'os-force_detach': 'volume_extension:volume_admin_actions:force_detach',
  'os-migrate_volume': 'volume_extension:volume_admin_actions:migrate_volume',
  'os-migrate_volume_completion': 'volume_extension:volume_admin_actions:migrate_volume_completion',
  'os-extend_volume_completion': 'volume_extension:volume_admin_actions:extend_volume_completion',
  'os-set_bootable': 'volume:update',
  'os-update_readonly_flag': 'volume:update_readonly_flag',
  'os-retype': 'volume:retype',
  'os-reserve': 'volume_extension:volume_actions:reserve',
  'os-unreserve': 'volume_extension:volume_actions:unreserve',
  'os-begin_detaching': 'volume_extension:volume_actions:begin_detaching',
  'os-roll_detaching': 'volume_extension:volume_actions:roll_detaching',
  'os-initialize_connection': 'volume_extension:volume_actions:initialize_connection',
  'os-terminate_connection': 'volume_extension:volume_actions:terminate_connection',
  'os-attach': 'volume_extension:volume_actions:attach',
  'os-detach': 'volume_extension:volume_actions:detach',
  'os-volume_upload_image': 'volume_extension:volume_actions:upload_image',
  'os-set_image_metadata': 'volume_extension:volume_image_metadata:set',
  'os-unset_image_metadata': 'volume_extension:volume_image_metadata:remove',
  'os-show_image_metadata': 'volume:get_volume_metadata',
  'os-reimage': 'volume:reimage',
  'os-unmanage': 'volume_extension:volume_unmanage',
  revert: 'volume:revert_to_snapshot',
};

const quota = (rule: string) => ({ rule, target: 'target_project_id' });

/** Cinder v3, under `/v3/{project_id}` and `/v3`. */
export const VOLUME_ROUTE_POLICIES: ApiRoutePolicies = {
  prefixes: ['/v3/:project_id', '/v3'],
  routes: {
    'POST /volumes': 'volume:create',
    'GET /volumes': 'volume:get_all',
    'GET /volumes/detail': 'volume:get_all',
    'GET /volumes/summary': 'volume:get_all',
    'GET /volumes/:volume_id': 'volume:get',
    'PUT /volumes/:volume_id': 'volume:update',
    'DELETE /volumes/:volume_id': 'volume:delete',
    'POST /volumes/:volume_id/action': { actions: VOLUME_ACTIONS },
    'GET /volumes/:volume_id/metadata': 'volume:get_volume_metadata',
    'POST /volumes/:volume_id/metadata': 'volume:create_volume_metadata',
    'PUT /volumes/:volume_id/metadata': 'volume:update_volume_metadata',
    'GET /volumes/:volume_id/metadata/:key': 'volume:get_volume_metadata',
    'PUT /volumes/:volume_id/metadata/:key': 'volume:update_volume_metadata',
    'DELETE /volumes/:volume_id/metadata/:key': 'volume:delete_volume_metadata',
    'GET /os-quota-sets/:target_project_id': quota('volume_extension:quotas:show'),
    'GET /os-quota-sets/:target_project_id/defaults': quota('volume_extension:quotas:show'),
    'PUT /os-quota-sets/:target_project_id': quota('volume_extension:quotas:update'),
    'DELETE /os-quota-sets/:target_project_id': quota('volume_extension:quotas:delete'),
    'GET /os-quota-class-sets/:class_name': 'volume_extension:quota_classes:get',
    'PUT /os-quota-class-sets/:class_name': 'volume_extension:quota_classes:update',
    'GET /messages': 'message:get_all',
    'GET /messages/:message_id': 'message:get',
    'DELETE /messages/:message_id': 'message:delete',
    'GET /os-services': 'volume_extension:services:index',
    'PUT /os-services/enable': 'volume_extension:services:update',
    'PUT /os-services/disable': 'volume_extension:services:update',
    'PUT /os-services/disable-log-reason': 'volume_extension:services:update',
    'PUT /os-services/freeze': 'volume:freeze_host',
    'PUT /os-services/thaw': 'volume:thaw_host',
    'PUT /os-services/failover_host': 'volume:failover_host',
    'PUT /os-services/failover': 'volume:failover_host',
    'GET /os-hosts': 'volume_extension:hosts',
    'GET /os-hosts/:host': 'volume_extension:hosts',
    'GET /scheduler-stats/get_pools': 'scheduler_extension:scheduler_stats:get_pools',
    'GET /capabilities/:host': 'volume_extension:capabilities',
    'GET /limits': 'limits_extension:used_limits',
    'GET /types': 'volume_extension:type_get_all',
    'GET /types/default': 'volume_extension:type_get',
    'GET /types/:type_id': 'volume_extension:type_get',
    'POST /types': 'volume_extension:type_create',
    'PUT /types/:type_id': 'volume_extension:type_update',
    'DELETE /types/:type_id': 'volume_extension:type_delete',
    'GET /types/:type_id/extra_specs': 'volume_extension:types_extra_specs:index',
    'POST /types/:type_id/extra_specs': 'volume_extension:types_extra_specs:create',
    'GET /types/:type_id/extra_specs/:key': 'volume_extension:types_extra_specs:show',
    'PUT /types/:type_id/extra_specs/:key': 'volume_extension:types_extra_specs:update',
    'DELETE /types/:type_id/extra_specs/:key': 'volume_extension:types_extra_specs:delete',
    'GET /types/:type_id/os-volume-type-access': 'volume_extension:volume_type_access:get_all_for_type',
    'POST /types/:type_id/action': {
      actions: {
        addProjectAccess: 'volume_extension:volume_type_access:addProjectAccess',
        removeProjectAccess: 'volume_extension:volume_type_access:removeProjectAccess',
      },
    },
    'POST /os-volume-transfer': 'volume:create_transfer',
    'GET /os-volume-transfer': 'volume:get_all_transfers',
    'GET /os-volume-transfer/detail': 'volume:get_all_transfers',
    'GET /os-volume-transfer/:transfer_id': 'volume:get_transfer',
    'DELETE /os-volume-transfer/:transfer_id': 'volume:delete_transfer',
    'POST /os-volume-transfer/:transfer_id/accept': 'volume:accept_transfer',
    'POST /volume-transfers': 'volume:create_transfer',
    'GET /volume-transfers': 'volume:get_all_transfers',
    'GET /volume-transfers/detail': 'volume:get_all_transfers',
    'GET /volume-transfers/:transfer_id': 'volume:get_transfer',
    'DELETE /volume-transfers/:transfer_id': 'volume:delete_transfer',
    'POST /volume-transfers/:transfer_id/accept': 'volume:accept_transfer',
    'GET /traces/:request_id': 'basalt:traces:get',
    'POST /snapshots': 'volume:create_snapshot',
    'GET /snapshots': 'volume:get_all_snapshots',
    'GET /snapshots/detail': 'volume:get_all_snapshots',
    'GET /snapshots/:snapshot_id': 'volume:get_snapshot',
    'PUT /snapshots/:snapshot_id': 'volume:update_snapshot',
    'DELETE /snapshots/:snapshot_id': 'volume:delete_snapshot',
    'POST /snapshots/:snapshot_id/action': {
      actions: {
        'os-reset_status': 'volume_extension:snapshot_admin_actions:reset_status',
        'os-update_snapshot_status': 'snapshot_extension:snapshot_actions:update_snapshot_status',
        'os-force_delete': 'volume_extension:snapshot_admin_actions:force_delete',
      },
    },
    'GET /snapshots/:snapshot_id/metadata': 'volume:get_snapshot_metadata',
    'POST /snapshots/:snapshot_id/metadata': 'volume:update_snapshot_metadata',
    'PUT /snapshots/:snapshot_id/metadata': 'volume:update_snapshot_metadata',
    'GET /snapshots/:snapshot_id/metadata/:key': 'volume:get_snapshot_metadata',
    'PUT /snapshots/:snapshot_id/metadata/:key': 'volume:update_snapshot_metadata',
    'DELETE /snapshots/:snapshot_id/metadata/:key': 'volume:delete_snapshot_metadata',
    'GET /os-availability-zone': { none: 'Cinder lists availability zones to any caller' },
    'GET /extensions': { none: 'Cinder lists extensions to any caller' },
  },
};

/** Nova v2.1, under `/v2.1/{project_id}` and `/v2.1`. */
export const COMPUTE_ROUTE_POLICIES: ApiRoutePolicies = {
  prefixes: ['/v2.1/:project_id', '/v2.1'],
  routes: {
    'GET /flavors': { none: 'Nova lists flavors to any caller' },
    'GET /flavors/detail': { none: 'Nova lists flavors to any caller' },
    'GET /flavors/:flavor_id': { none: 'Nova shows flavors to any caller' },
    'POST /servers': 'os_compute_api:servers:create',
    'GET /servers': 'os_compute_api:servers:index',
    'GET /servers/detail': 'os_compute_api:servers:detail',
    'GET /servers/:server_id': 'os_compute_api:servers:show',
    'PUT /servers/:server_id': 'os_compute_api:servers:update',
    'DELETE /servers/:server_id': 'os_compute_api:servers:delete',
    'POST /servers/:server_id/action': {
      actions: {
        reboot: 'os_compute_api:servers:reboot',
        'os-start': 'os_compute_api:servers:start',
        'os-stop': 'os_compute_api:servers:stop',
      },
    },
    'GET /servers/:server_id/os-volume_attachments': 'os_compute_api:os-volumes-attachments:index',
    'POST /servers/:server_id/os-volume_attachments': 'os_compute_api:os-volumes-attachments:create',
    'GET /servers/:server_id/os-volume_attachments/:volume_id': 'os_compute_api:os-volumes-attachments:show',
    'PUT /servers/:server_id/os-volume_attachments/:volume_id':
      'os_compute_api:os-volumes-attachments:update',
    'DELETE /servers/:server_id/os-volume_attachments/:volume_id':
      'os_compute_api:os-volumes-attachments:delete',
    'POST /os-server-external-events': 'os_compute_api:os-server-external-events:create',
    'GET /servers/:server_id/os-instance-actions': 'os_compute_api:os-instance-actions:list',
    'GET /servers/:server_id/os-instance-actions/:request_id': 'os_compute_api:os-instance-actions:show',
    'GET /os-availability-zone': 'os_compute_api:os-availability-zone:list',
    'GET /os-availability-zone/detail': 'os_compute_api:os-availability-zone:detail',
    'GET /limits': 'os_compute_api:limits',
    'GET /extensions': 'os_compute_api:extensions',
  },
};

/** Glance v2, under `/v2`. */
export const IMAGE_ROUTE_POLICIES: ApiRoutePolicies = {
  prefixes: ['/v2'],
  routes: {
    'GET /images': 'get_images',
    'POST /images': 'add_image',
    'GET /images/:image_id': 'get_image',
    'PATCH /images/:image_id': 'modify_image',
    'DELETE /images/:image_id': 'delete_image',
    'GET /images/:image_id/file': 'download_image',
    'PUT /images/:image_id/file': 'upload_image',
    'POST /images/:image_id/actions/deactivate': 'deactivate',
    'POST /images/:image_id/actions/reactivate': 'reactivate',
    'PUT /images/:image_id/tags/:tag_value': 'modify_image',
    'DELETE /images/:image_id/tags/:tag_value': 'modify_image',
    'GET /schemas/image': { none: 'Glance serves its schemas to any caller it authenticated' },
    'GET /schemas/images': { none: 'Glance serves its schemas to any caller it authenticated' },
  },
};
