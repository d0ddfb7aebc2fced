import { InvalidInputError } from '@basalt/errors';
import { checkNonNegativeInteger, checkQueryEnum, OSLO_FALSE, OSLO_TRUE, queryValues } from './compute-query';
import { FLAVORS, type Flavor } from './flavors';
import { text } from './list-query';

/** nova's VALID_SORT_KEYS for flavors (2.1 to 2.101), in its order, as its schema error lists them. */
const SORT_KEYS = [
  'created_at',
  'description',
  'disabled',
  'ephemeral_gb',
  'flavorid',
  'id',
  'is_public',
  'memory_mb',
  'name',
  'root_gb',
  'rxtx_factor',
  'swap',
  'updated_at',
  'vcpu_weight',
  'vcpus',
] as const;
type SortKey = (typeof SORT_KEYS)[number];
const SORT_DIRS = ['asc', 'desc'] as const;

/**
 * A flavor's column for each sort key. Basalt's flavors are nova's defaults: public, enabled, no
 * swap, description or vcpu weight, made together, so those keys leave the table's own order.
 */
const COLUMN: Record<SortKey, (f: Flavor) => string | number> = {
  created_at: () => 0,
  description: () => 0,
  disabled: () => 0,
  ephemeral_gb: (f) => f.ephemeral,
  flavorid: (f) => f.id,
  id: (f) => rowId(f),
  is_public: () => 0,
  memory_mb: (f) => f.ram,
  name: (f) => f.name,
  root_gb: (f) => f.disk,
  rxtx_factor: () => 0,
  swap: () => 0,
  updated_at: () => 0,
  vcpu_weight: () => 0,
  vcpus: (f) => f.vcpus,
};

/** The flavor's row in nova's flavors table: the order they were made in. */
const rowId = (f: Flavor) => FLAVORS.indexOf(f);

export interface FlavorListRequest {
  readonly flavors: readonly Flavor[];
  /** The page's size: a page this full has a next link. */
  readonly limit: number;
}

/**
 * A flavor list as nova's flavors controller answers it (2.1 to 2.74): the query schema (limit,
 * sort_key, sort_dir), then limit and marker, `is_public` (admins only; everyone else sees the
 * public ones), `minRam` and `minDisk`, sorted by the key then the row, both in `sort_dir`, and
 * the page after the marker. Other names are ignored, as nova's schema lets them through.
 */
export function listFlavors(
  query: Record<string, unknown>,
  maxLimit: number,
  isAdmin: boolean,
): FlavorListRequest {
  for (const limit of queryValues(query, 'limit')) checkNonNegativeInteger('limit', limit);
  for (const key of queryValues(query, 'sort_key')) checkQueryEnum('sort_key', key, SORT_KEYS);
  for (const dir of queryValues(query, 'sort_dir')) checkQueryEnum('sort_dir', dir, SORT_DIRS);
  const sortKey = (text(query, 'sort_key') || 'flavorid') as SortKey;
  const descending = (text(query, 'sort_dir') || 'asc') === 'desc';
  const given = text(query, 'limit');
  const limit = Math.min(maxLimit, given === undefined ? maxLimit : Number(given));
  const marker = text(query, 'marker');

  // true: the public flavors, false: the private ones, undefined: all
  const isPublic = isAdmin ? isPublicParam(text(query, 'is_public')) : true;
  const minRam = minimum(query, 'minRam');
  const minDisk = minimum(query, 'minDisk');

  const column = COLUMN[sortKey];
  const order = (a: Flavor, b: Flavor) => {
    const sign = descending ? -1 : 1;
    const [x, y] = [column(a), column(b)];
    return sign * (x < y ? -1 : x > y ? 1 : rowId(a) - rowId(b));
  };
  let flavors = FLAVORS.filter(
    // every flavor is public: a list of the private ones is empty
    (f) => isPublic !== false && f.ram >= (minRam ?? 0) && f.disk >= (minDisk ?? 0),
  ).sort(order);
  if (marker !== undefined) {
    const after = FLAVORS.find((f) => f.id === marker);
    if (!after) throw new InvalidInputError(`marker [${marker}] not found`);
    flavors = flavors.filter((f) => order(f, after) > 0);
  }
  return { flavors: flavors.slice(0, limit), limit };
}

/** nova's _parse_is_public: absent is public only, `none` is every flavor, else a strict boolean. */
function isPublicParam(given: string | undefined): boolean | undefined {
  if (given === undefined) return true;
  if (given.toLowerCase() === 'none') return undefined;
  const value = given.trim().toLowerCase();
  if (OSLO_TRUE.includes(value)) return true;
  if (OSLO_FALSE.includes(value)) return false;
  throw new InvalidInputError(`Invalid is_public filter [${given}]`);
}

/** `minRam` or `minDisk` as Python's int() reads it; anything else is nova's "Invalid … filter". */
function minimum(query: Record<string, unknown>, key: 'minRam' | 'minDisk'): number | undefined {
  const given = text(query, key);
  if (given === undefined) return undefined;
  if (!/^\s*[+-]?\d+(_\d+)*\s*$/.test(given)) throw new InvalidInputError(`Invalid ${key} filter [${given}]`);
  return Number(given.replace(/_/g, ''));
}
