import type { Page } from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';
import type { FastifyRequest } from 'fastify';
import { metadataBody } from './validate';
import { atLeast } from './versions';

const MAX_INT = 2 ** 31 - 1;

/** Cinder's RESOURCE_FILTER: from here a member's filter the resource does not offer is a 400. */
const RESOURCE_FILTER = '3.31';

/** What one collection offers to its list requests (Cinder's controller and resource_filters.json). */
export interface ListSpec<K extends string> {
  /** The sort keys; anything else is Cinder's "Invalid sort key". */
  readonly sortKeys: readonly K[];
  /** The filters anyone may use. */
  readonly filters: readonly string[];
  /** Filters only an admin may use (Cinder lets admins filter on any column). */
  readonly adminFilters?: readonly string[];
  /** The microversion from which marker, sort and filters are honoured (before it: `legacySort`, a limit). */
  readonly paginatedFrom?: string;
  readonly legacySort?: Page<K>['sort'];
  /** From when a member's filter the resource does not offer is refused (else dropped); 3.31 by default. */
  readonly strictFrom?: string;
  /** Cinder checks no filter names here: one the resource lacks matches nothing, for anyone. */
  readonly lenient?: boolean;
}

export interface ListRequest<K extends string> {
  readonly page: Page<K>;
  /** The filters given, by name, every one offered by the spec to this caller. */
  readonly filters: Readonly<Record<string, string>>;
  /**
   * An admin named a filter the resource has no column for: Cinder answers such a list with no
   * rows (is_valid_model_filters), and so does Basalt.
   */
  readonly matchesNothing: boolean;
  /** Cinder's all_tenants (an admin's view across projects); never a filter. */
  readonly allTenants: boolean;
}

const PAGING = new Set(['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir', 'all_tenants']);

export const text = (query: Record<string, unknown>, key: string): string | undefined => {
  const value = query[key];
  // a repeated parameter: Cinder's webob keeps the last
  return Array.isArray(value) ? (value.at(-1) as string | undefined) : (value as string | undefined);
};

/** `limit`, at most `maxLimit` (Cinder's osapi_max_limit), which is also the default. */
export function listLimit(query: Record<string, unknown>, maxLimit: number): number {
  const given = text(query, 'limit');
  if (given === undefined) return maxLimit;
  if (!/^\s*[+-]?\d+\s*$/.test(given)) throw new InvalidInputError('limit param must be an integer');
  const limit = Number(given);
  if (limit < 0) throw new InvalidInputError('limit param must be positive');
  return Math.min(limit, maxLimit);
}

function offsetParam(query: Record<string, unknown>): number {
  const given = text(query, 'offset');
  if (given === undefined) return 0;
  if (!/^\s*[+-]?\d+\s*$/.test(given)) throw new InvalidInputError('offset must be an integer');
  const offset = Number(given);
  if (offset < 0) throw new InvalidInputError('offset must be >= 0');
  if (offset > MAX_INT) throw new InvalidInputError(`offset must be <= ${MAX_INT}`);
  return offset;
}

/** Cinder's get_sort_params and process_sort_params: `sort=k1:d1,k2`, or the older `sort_key`/`sort_dir`. */
function sortParam<K extends string>(query: Record<string, unknown>, spec: ListSpec<K>): Page<K>['sort'] {
  const sort = text(query, 'sort');
  const sortKey = text(query, 'sort_key');
  const sortDir = text(query, 'sort_dir');
  if (sort !== undefined && (sortKey !== undefined || sortDir !== undefined)) {
    throw new InvalidInputError(
      "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
    );
  }
  const pairs =
    sort !== undefined
      ? sort
          .trim()
          .split(',')
          .map((part) => {
            const [key = '', dir = ''] = part.split(':', 2);
            return [key.trim(), dir.trim() || 'desc'] as const;
          })
      : [[(sortKey ?? 'created_at').trim(), (sortDir ?? 'desc').trim()] as const];
  return pairs.map(([key, dir]) => {
    if (dir !== 'asc' && dir !== 'desc') {
      throw new InvalidInputError("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.");
    }
    if (!(spec.sortKeys as readonly string[]).includes(key)) {
      throw new InvalidInputError('Invalid input received: Invalid sort key');
    }
    return { key: key as K, dir };
  });
}

/**
 * A list request's pagination, order and filters, parsed and checked once for every collection,
 * as Cinder's api/common.py does it. A member's filter the resource does not offer is dropped
 * before 3.31 and refused from then on; an admin may use the admin filters too.
 */
export function parseList<K extends string>(
  query: Record<string, unknown>,
  spec: ListSpec<K>,
  maxLimit: number,
  caller: { readonly isAdmin: boolean; readonly version: string },
): ListRequest<K> {
  const limit = listLimit(query, maxLimit);
  const offset = offsetParam(query);
  const allTenants = ['1', 't', 'true', 'on', 'y', 'yes'].includes(
    (text(query, 'all_tenants') ?? '').toLowerCase(),
  );
  if (spec.paginatedFrom !== undefined && !atLeast(caller.version, spec.paginatedFrom)) {
    return {
      page: { limit, offset, sort: spec.legacySort ?? [{ key: 'created_at' as K, dir: 'desc' }] },
      filters: {},
      matchesNothing: false,
      allTenants,
    };
  }
  const marker = text(query, 'marker');
  const sort = sortParam(query, spec);
  const filters: Record<string, string> = {};
  const refused: string[] = [];
  let matchesNothing = false;
  for (const key of Object.keys(query)) {
    if (PAGING.has(key)) continue;
    const value = text(query, key) ?? '';
    if (spec.filters.includes(key) || (caller.isAdmin && spec.adminFilters?.includes(key))) {
      filters[key] = value;
    } else if (caller.isAdmin || spec.lenient) {
      matchesNothing = true;
    } else if (atLeast(caller.version, spec.strictFrom ?? RESOURCE_FILTER)) {
      refused.push(key);
    }
  }
  if (refused.length > 0) {
    throw new InvalidInputError(`Invalid filters ${refused.join(',')} are found in query options.`);
  }
  return {
    page: { limit, offset, sort, ...(marker !== undefined ? { marker } : {}) },
    filters,
    matchesNothing,
    allTenants,
  };
}

/**
 * Cinder's `<collection>_links`: a `next` link when the page is full (as many items as the
 * limit), to the same request from after its last item. The link keeps every parameter given,
 * the marker replaced, and names the project only when the request's URL did.
 */
export function nextLinks(
  req: FastifyRequest,
  baseUrl: string,
  projectId: string | undefined,
  collection: string,
  ids: readonly string[],
  limit: number,
): Array<{ rel: 'next'; href: string }> {
  const last = ids.at(-1);
  if (last === undefined || ids.length < limit) return [];
  const path = req.url.split('?')[0] ?? '';
  const project = projectId !== undefined && path.startsWith(`/v3/${projectId}/`) ? `/${projectId}` : '';
  const query = nextQuery(req.query as Record<string, unknown>, last, false);
  return [{ rel: 'next', href: `${baseUrl}/v3${project}/${collection}?${query}` }];
}

/**
 * A next link's query: every parameter given, with `marker` as the marker. Cinder's puts it
 * last; Nova's (`sorted`) has the parameters in the order of their names and the marker where
 * the request had one, else last.
 */
export function nextQuery(query: Record<string, unknown>, marker: string, sorted: boolean): string {
  const params = new URLSearchParams();
  const entries = Object.entries(query);
  if (sorted) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let placed = false;
  for (const [key, value] of entries) {
    if (key === 'marker') {
      if (sorted) params.append('marker', marker);
      placed = sorted;
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  if (!placed) params.append('marker', marker);
  return params.toString();
}

/** A dict-valued filter (`metadata`, `extra_specs`): JSON, or a dict's repr as the clients send it. */
export function dictFilter(field: string, given: string): Record<string, string> {
  try {
    return metadataBody(field, JSON.parse(given.replace(/'/g, '"')));
  } catch (error) {
    if (error instanceof InvalidInputError) throw error;
    throw new InvalidInputError(`Invalid ${field} filter "${given}".`);
  }
}
