import { NotFoundError } from '@basalt/errors';
import type { Db, Row } from './sql';

export interface Page<K extends string> {
  readonly limit: number;
  readonly marker?: string;
  /** Rows to skip after the marker (Cinder's `offset`). */
  readonly offset?: number;
  readonly sort: ReadonlyArray<{ key: K; dir: 'asc' | 'desc' }>;
}

/**
 * A listed table: its sort keys as SQL expressions (no NULLs in them, so keyset comparisons never
 * meet one; `id` among them, the tie-breaker every order ends with).
 */
export interface Listing<K extends string> {
  readonly table: string;
  readonly sortColumns: Readonly<Record<K | 'id', string>>;
}

/** WHERE conditions with `?` for each value, in order; a condition may hold one value. */
export interface Conditions {
  readonly scope: ReadonlyArray<readonly [sql: string, value?: unknown]>;
  readonly filters: ReadonlyArray<readonly [sql: string, value?: unknown]>;
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
    params.push(page.marker);
    const [found] = await db.query(
      `SELECT 1 FROM ${listing.table} WHERE ${[`id = $${params.length}`, ...scope].join(' AND ')}`,
      params,
    );
    if (!found) throw new NotFoundError(`Marker ${page.marker} could not be found.`);
    params.pop();
  }
  const conditions = [...scope, ...where.filters.map(bind)];
  const order = [...page.sort, { key: 'id' as const, dir: 'asc' as const }];
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
  params.push(page.limit, page.offset ?? 0);
  const orderBy = order.map((s) => `${column(s.key)} ${s.dir.toUpperCase()}`).join(', ');
  return db.query(
    `SELECT * FROM ${listing.table} WHERE ${conditions.join(' AND ') || 'true'} ORDER BY ${orderBy} LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
}
