import { INSTANCE_SORT_KEYS, type InstanceFilter, type InstancePage, type InstanceSortKey } from '@basalt/db';
import { ForbiddenError, InvalidInputError } from '@basalt/errors';
import {
  checkChangesWindow,
  checkDateTime,
  checkNonNegativeInteger,
  checkQueryEnum,
  isoTime,
  OSLO_FALSE,
  OSLO_TRUE,
  queryValues as values,
} from './compute-query';
import { text } from './list-query';
import { atLeast } from './versions';

/** Sort keys nova accepted before its query schema and now drops without a word (SERVER_LIST_IGNORE_SORT_KEY). */
const IGNORED_SORT_KEYS = [
  'architecture',
  'cell_name',
  'cleaned',
  'default_ephemeral_device',
  'default_swap_device',
  'deleted',
  'deleted_at',
  'disable_terminate',
  'ephemeral_gb',
  'ephemeral_key_uuid',
  'id',
  'key_data',
  'launched_on',
  'locked',
  'memory_mb',
  'os_type',
  'reservation_id',
  'root_gb',
  'shutdown_terminate',
  'user_data',
  'vcpus',
  'vm_mode',
];
const SORTED_KEYS = INSTANCE_SORT_KEYS.filter((k) => k !== 'locked');
/** The enum of nova's VALID_SORT_KEYS, in its order, as its schema error lists it. */
const SCHEMA_SORT_KEYS = [...SORTED_KEYS, ...IGNORED_SORT_KEYS];
/** From 2.73 `locked` is a sort key, no longer dropped (nova lists this enum in a set's order). */
const IGNORED_SORT_KEYS_V273 = IGNORED_SORT_KEYS.filter((k) => k !== 'locked');
const SCHEMA_SORT_KEYS_V273 = ['locked', ...SORTED_KEYS, ...IGNORED_SORT_KEYS_V273];
const ADMIN_SORT_KEYS = ['host', 'node'];

/**
 * nova's _STATE_MAP read backwards: a status names VM states and the tasks under way, `default`
 * being "whatever task" (so ACTIVE also matches a rebooting server, as in nova).
 */
const STATUSES: Record<string, { vm: string[]; task: string[] }> = {
  ACTIVE: { vm: ['active'], task: ['default'] },
  REBOOT: { vm: ['active'], task: ['reboot_pending', 'reboot_started', 'rebooting'] },
  HARD_REBOOT: { vm: ['active'], task: ['reboot_pending_hard', 'reboot_started_hard', 'rebooting_hard'] },
  PASSWORD: { vm: ['active'], task: ['updating_password'] },
  REBUILD: {
    vm: ['active', 'error', 'stopped'],
    task: ['rebuild_block_device_mapping', 'rebuild_spawning', 'rebuilding'],
  },
  MIGRATING: { vm: ['active', 'paused'], task: ['migrating'] },
  RESIZE: {
    vm: ['active', 'stopped'],
    task: ['resize_finish', 'resize_migrated', 'resize_migrating', 'resize_prep'],
  },
  BUILD: { vm: ['building'], task: ['default'] },
  SHUTOFF: { vm: ['stopped'], task: ['default'] },
  VERIFY_RESIZE: { vm: ['resized'], task: ['default'] },
  REVERT_RESIZE: { vm: ['resized'], task: ['resize_reverting'] },
  PAUSED: { vm: ['paused'], task: ['default'] },
  SUSPENDED: { vm: ['suspended'], task: ['default'] },
  RESCUE: { vm: ['rescued'], task: ['default'] },
  ERROR: { vm: ['error'], task: ['default'] },
  DELETED: { vm: ['deleted'], task: ['default'] },
  SOFT_DELETED: { vm: ['soft-delete'], task: ['default'] },
  SHELVED: { vm: ['shelved'], task: ['default'] },
  SHELVED_OFFLOADED: { vm: ['shelved_offloaded'], task: ['default'] },
};

/** nova's TAG_SEARCH_FILTERS (from 2.26, for everyone): comma-separated tags each. */
const TAG_FILTERS = [
  ['tags', 'tags'],
  ['tags-any', 'tagsAny'],
  ['not-tags', 'notTags'],
  ['not-tags-any', 'notTagsAny'],
] as const;

export interface ServerListRequest {
  readonly page: InstancePage;
  readonly filter: Omit<InstanceFilter, 'projectId'>;
  /** An admin's view across projects, narrowed to one by `project_id` or `tenant_id` when given. */
  readonly allTenants: boolean;
  readonly projectId?: string;
  /** Before 2.38 a status nova does not know lists nothing. */
  readonly empty: boolean;
}

/**
 * A server list request read as nova's servers controller reads it (2.1 to 2.72): the query
 * schema first (limit, sort_key, changes-since), then status, all_tenants, the admin-only filters
 * and sort keys. Filters nova offers only to admins (`host`, `deleted`, `project_id`) are dropped
 * for everyone else, as nova's remove_invalid_options does; so are names it does not know.
 */
export function parseServerList(
  query: Record<string, unknown>,
  maxLimit: number,
  caller: { readonly isAdmin: boolean; readonly version: string },
): ServerListRequest {
  for (const limit of values(query, 'limit')) {
    checkNonNegativeInteger('limit', limit);
  }
  const v273 = atLeast(caller.version, '2.73');
  const schemaKeys = v273 ? SCHEMA_SORT_KEYS_V273 : SCHEMA_SORT_KEYS;
  const sortKeys = values(query, 'sort_key').map((k) => k.trim());
  for (const key of sortKeys) checkQueryEnum('sort_key', key, schemaKeys);
  const changesSince = values(query, 'changes-since');
  for (const since of changesSince) checkDateTime('changes-since', since);
  // 2.66's changes-before (before it, a name nova does not know)
  const v266 = atLeast(caller.version, '2.66');
  if (v266) for (const before of values(query, 'changes-before')) checkDateTime('changes-before', before);

  const filter: { -readonly [K in keyof ServerListRequest['filter']]: ServerListRequest['filter'][K] } = {};
  const statuses = values(query, 'status').map((s) => s.toUpperCase());
  if (statuses.length > 0) {
    const known = statuses.flatMap((s) => STATUSES[s] ?? []);
    if (known.length === 0) {
      if (atLeast(caller.version, '2.38')) throw new InvalidInputError('Invalid status value');
      return { page: { limit: 0, sort: [] }, filter, allTenants: false, empty: true };
    }
    const vm = [...new Set(known.flatMap((k) => k.vm))];
    const task = new Set(known.flatMap((k) => k.task));
    filter.vmStates = vm;
    if (!task.has('default')) filter.taskStates = [...task];
    if (vm.length === 1 && vm[0] === 'deleted') {
      if (!caller.isAdmin) throw new ForbiddenError('Only administrators may list deleted instances');
      filter.deleted = true;
    }
  }
  const since = text(query, 'changes-since');
  if (since !== undefined) filter.changesSince = isoTime(since);
  const before = v266 ? text(query, 'changes-before') : undefined;
  if (before !== undefined) {
    filter.changesBefore = isoTime(before);
    checkChangesWindow(filter.changesSince, filter.changesBefore);
  }
  const name = text(query, 'name') ?? text(query, 'display_name');
  if (name !== undefined) filter.name = name;
  const locked = v273 ? text(query, 'locked') : undefined;
  if (locked !== undefined) filter.locked = strictBool(locked);
  if (atLeast(caller.version, '2.26')) {
    for (const [param, key] of TAG_FILTERS) {
      const tags = text(query, param);
      if (tags !== undefined) filter[key] = tags.split(',');
    }
  }
  if (caller.isAdmin) {
    const host = text(query, 'host');
    if (host !== undefined) filter.host = host;
    const deleted = text(query, 'deleted');
    if (deleted !== undefined) filter.deleted = OSLO_TRUE.includes(deleted.trim().toLowerCase());
  }
  // the live servers, unless a deleted filter, changes-since or changes-before asks for the deleted too
  if (filter.deleted === undefined && since === undefined && before === undefined) filter.deleted = false;

  const allTenants = allTenantsParam(query);
  const projectId = allTenants ? (text(query, 'project_id') ?? text(query, 'tenant_id')) : undefined;

  const limit = Math.min(Number(text(query, 'limit') ?? maxLimit), maxLimit);
  const marker = text(query, 'marker');
  return {
    page: {
      limit,
      sort: sortOrder(
        sortKeys,
        values(query, 'sort_dir'),
        caller.isAdmin,
        v273 ? IGNORED_SORT_KEYS_V273 : IGNORED_SORT_KEYS,
      ),
      ...(marker ? { marker } : {}),
    },
    filter,
    allTenants,
    ...(projectId !== undefined ? { projectId } : {}),
    empty: false,
  };
}

/** nova's get_sort_params, remove_invalid_sort_keys and process_sort_params, in that order. */
function sortOrder(
  givenKeys: string[],
  givenDirs: string[],
  isAdmin: boolean,
  ignored: readonly string[],
): InstancePage['sort'] {
  const keys = givenKeys.length > 0 ? [...givenKeys] : ['created_at'];
  const dirs = givenDirs.length > 0 ? givenDirs.map((d) => d.trim()) : ['desc'];
  for (const key of [...keys]) {
    const at = keys.indexOf(key);
    if (ignored.includes(key)) {
      if (dirs.length > at) dirs.splice(at, 1);
      keys.splice(at, 1);
    } else if (ADMIN_SORT_KEYS.includes(key) && !isAdmin) {
      throw new ForbiddenError(`Only administrators can sort servers by ${key}`);
    }
  }
  for (const dir of dirs) {
    if (dir !== 'asc' && dir !== 'desc') {
      throw new InvalidInputError("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'");
    }
  }
  if (dirs.length > keys.length) {
    throw new InvalidInputError('Invalid input received: Sort direction size exceeds sort key size');
  }
  const first = (dirs[0] ?? 'desc') as 'asc' | 'desc';
  return keys.map((key, i) => ({ key: key as InstanceSortKey, dir: (dirs[i] ?? first) as 'asc' | 'desc' }));
}

/** nova's is_all_tenants: present and empty is yes; anything else must be one of oslo's booleans. */
function allTenantsParam(query: Record<string, unknown>): boolean {
  const given = text(query, 'all_tenants');
  if (given === undefined) return false;
  return given.trim() === '' || strictBool(given);
}

/** oslo's bool_from_string(strict=True), its refusal as nova's InvalidInput. */
function strictBool(given: string): boolean {
  const value = given.trim().toLowerCase();
  if (OSLO_TRUE.includes(value)) return true;
  if (OSLO_FALSE.includes(value)) return false;
  const acceptable = [...OSLO_TRUE, ...OSLO_FALSE]
    .sort()
    .map((s) => `'${s}'`)
    .join(', ');
  throw new InvalidInputError(
    `Invalid input received: Unrecognized value '${given}', acceptable values are: ${acceptable}`,
  );
}
