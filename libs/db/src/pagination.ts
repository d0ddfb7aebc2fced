import { NotFoundError } from '@basalt/errors';
import type { Db, Row } from './sql';

export interface Page<K extends string> {
  readonly limit: number;
  readonly marker?: string;
  /** Rows to skip after the marker (or from the first row), as Cinder's `offset`. */
  readonly offset?: number;
  readonly sort: ReadonlyArray<{ key: K; dir: 'asc' | 'desc' }>;
}

/**
 * A listed table: its sort keys as SQL expressions (no NULLs in them, so keyset comparisons never
 * meet one; `id` among them, the tie-breaker every order ends with). `notFound` words a marker
 * that names no row, as the resource's own not-found fault (Cinder answers "Volume X could not be
 * found.", "Message X …"); `badMarker`, when the API calls it something else.
 */
export interface Listing<K extends string> {
  readonly table: string;
  readonly sortColumns: Readonly<Record<K | 'id', string>>;
  readonly notFound?: (id: string) => string;
  /** A marker that names no row, as an API answers it other than not-found (Nova's 400). */
  readonly badMarker?: (id: string) => Error;
}

/** WHERE conditions with `?` for each value, in order; a condition may hold one value. */
export interface Conditions {
  readonly scope: ReadonlyArray<readonly [sql: string, value?: unknown]>;
  readonly filters: ReadonlyArray<readonly [sql: string, value?: unknown]>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Cinder's order (process_sort_params): the requested keys, then `created_at` and `id` where not
 * asked for, in the first key's direction, so every order is total.
 */
function totalOrder<K extends string>(
  listing: Listing<K>,
  sort: Page<K>['sort'],
): Array<{ key: K | 'id'; dir: 'asc' | 'desc' }> {
  const dir = sort[0]?.dir ?? 'desc';
  const keys = new Set<string>(sort.map((s) => s.key));
  const tail = (['created_at', 'id'] as const)
    .filter((k) => !keys.has(k) && k in listing.sortColumns)
    .map((key) => ({ key: key as K | 'id', dir }));
  return [...sort, ...tail];
}

/**
 * One page of `listing`'s rows matching `scope` and `filters`, in the requested order, after the
 * marker row. Keyset pagination: rows strictly after the marker, compared with the marker row's
 * own values in SQL (timestamps keep their microseconds that way). The marker must be a row in
 * `scope` (a project's rows), whatever the filters say, or the page is a NotFoundError.
 */
export async function keysetPage<K extends string>(
  db: Db,
  listing: Listing<K>,
  where: Conditions,
  page: Page<K>,
): Promise<Row[]> {
  const params: unknown[] = [];
  const bind = ([sql, ...value]: readonly [string, unknown?]) => {
    if (value.length === 0) return sql;
    params.push(value[0]);
    return sql.replace('?', `$${params.length}`);
  };
  const column = (key: K | 'id') => listing.sortColumns[key];
  const scope = where.scope.map(bind);
  if (page.marker !== undefined) {
    const marker = page.marker;
    const missing = () =>
      listing.badMarker?.(marker) ??
      new NotFoundError(listing.notFound?.(marker) ?? `Marker ${marker} could not be found.`);
    if (!UUID.test(page.marker)) throw missing();
    params.push(page.marker);
    const [found] = await db.query(
      `SELECT 1 FROM ${listing.table} WHERE ${[`id = $${params.length}`, ...scope].join(' AND ')}`,
      params,
    );
    if (!found) throw missing();
    params.pop();
  }
  const conditions = [...scope, ...where.filters.map(bind)];
  const order = totalOrder(listing, page.sort);
  if (page.marker !== undefined) {
    params.push(page.marker);
    const of = (key: K | 'id') =>
      `(SELECT ${column(key)} FROM ${listing.table} WHERE id = $${params.length})`;
    const clauses = order.map((s, i) => {
      const equal = order.slice(0, i).map((p) => `${column(p.key)} = ${of(p.key)}`);
      const after = `${column(s.key)} ${s.dir === 'asc' ? '>' : '<'} ${of(s.key)}`;
      return `(${[...equal, after].join(' AND ')})`;
    });
    conditions.push(`(${clauses.join(' OR ')})`);
  }
  params.push(page.limit);
  const limit = `$${params.length}`;
  params.push(page.offset ?? 0);
  const orderBy = order.map((s) => `${column(s.key)} ${s.dir.toUpperCase()}`).join(', ');
  return db.query(
    `SELECT * FROM ${listing.table} WHERE ${conditions.join(' AND ') || 'true'} ORDER BY ${orderBy} LIMIT ${limit} OFFSET $${params.length}`,
    params,
  );
}
