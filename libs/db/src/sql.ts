import { ATTR, endSpan, SpanStatusCode, startItemSpans } from '@basalt/trace';
import type { DataSource, EntityManager } from 'typeorm';
import type { Move } from './states';

export type Db = DataSource | EntityManager;
export type Row = Record<string, unknown>;

/** A statement's parameters: `add` keeps a value and answers its placeholder. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** TypeORM answers an UPDATE or DELETE with `[rows, rowCount]`; this returns just the rows. */
export async function updateReturning(db: Db, sql: string, params: unknown[]): Promise<Row[]> {
  const result = await db.query(sql, params);
  return Array.isArray(result[0]) ? result[0] : result;
}

/**
 * A table whose rows carry a state of a state table. `columns` maps each change a move may set
 * to its column. The state is one column, or two (nova's `vm_state` and `task_state`): its
 * states are then written `<first>/<second>`, an empty second part meaning NULL. Rows that reach
 * `deletedState` stay with `deleted` set, and no statement touches them again.
 */
export interface StatefulTable<C extends object> {
  readonly table: string;
  readonly stateColumn: string | readonly [string, string];
  readonly columns: { readonly [K in keyof C]-?: string };
  readonly deletedState?: string;
}

/** The WHERE conditions every statement on the table's rows starts from. */
export function liveRows(table: StatefulTable<object>, alias = ''): string[] {
  return table.deletedState === undefined ? [] : [`NOT ${alias}deleted`];
}

/** The condition that a row is in one of `states`. */
function stateIn(table: StatefulTable<object>, alias: string, states: readonly string[], p: Params): string {
  const c = table.stateColumn;
  const list = p.add([...states]);
  return typeof c === 'string'
    ? `${alias}${c} = ANY(${list})`
    : `(${alias}${c[0]} || '/' || coalesce(${alias}${c[1]}, '')) = ANY(${list}::text[])`;
}

/** The assignments that put a row in `state`: its state column(s), `updated_at`, the soft delete. */
function enter(table: StatefulTable<object>, state: string, p: Params): string[] {
  const c = table.stateColumn;
  const value = p.add(state);
  const sets =
    typeof c === 'string'
      ? [`${c} = ${value}`]
      : [`${c[0]} = split_part(${value}, '/', 1)`, `${c[1]} = nullif(split_part(${value}, '/', 2), '')`];
  sets.push('updated_at = now()');
  if (state === table.deletedState) sets.push('deleted = true', 'deleted_at = now()');
  return sets;
}

/**
 * Moves row `id` of `table` along `move` (from any of `move.from` to `move.to`), setting `changes`
 * and `updated_at` in the same statement: `UPDATE … WHERE state = ANY(from)`, so the row count
 * says whether this caller won and nothing reads a state before writing it; `guard` adds
 * conditions on other columns. Returns the updated row, or undefined when the row was not in any
 * of `move.from` (or failed the guard).
 */
export async function compareAndSwap<S extends string, C extends object>(
  db: Db,
  table: StatefulTable<C>,
  id: string,
  move: Move<S>,
  changes: C,
  guard: readonly string[] = [],
): Promise<Row | undefined> {
  const p = new Params();
  const where = [`id = ${p.add(id)}`, ...liveRows(table), stateIn(table, '', move.from, p), ...guard];
  const sets = enter(table, move.to, p);
  for (const [key, value] of Object.entries(changes)) {
    if (value !== undefined) sets.push(`${table.columns[key as keyof C]} = ${p.add(value)}`);
  }
  const reason = (changes as { statusReason?: unknown }).statusReason;
  const [row] = await tracingMoves(
    move,
    [id],
    typeof reason === 'string' ? reason : undefined,
    () =>
      updateReturning(
        db,
        `UPDATE ${table.table} SET ${sets.join(', ')} WHERE ${where.join(' AND ')} RETURNING *`,
        p.values,
      ),
    (rows) => [rows.length > 0],
  );
  return row;
}

/**
 * Runs `statement`, which moves rows `ids` along `move`, with a span per row named
 * `<resource> <move>`, in the trace of the request that asked for that row (a batch keeps them
 * apart); `took` says from the result which rows moved. A move into an error state is where a
 * request failed: its span is marked failed, with `reason`.
 */
export async function tracingMoves<T>(
  move: Move,
  ids: readonly string[],
  reason: string | undefined,
  statement: () => Promise<T>,
  took: (result: T) => readonly boolean[],
): Promise<T> {
  const spans = startItemSpans(`${move.resource} ${move.name}`, ids.length, (i) => ({
    [`basalt.${move.resource}.id`]: ids[i] as string,
    [ATTR.fromStatus]: move.from.join(','),
    [ATTR.toStatus]: move.to,
  }));
  try {
    const result = await statement();
    const moved = took(result);
    for (const [i, span] of spans.entries()) {
      span.setAttribute(ATTR.changed, moved[i] === true);
      if (moved[i] && move.to.startsWith('error')) {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: reason ?? `${move.resource} went to ${move.to}`,
        });
      }
      span.end();
    }
    return result;
  } catch (error) {
    for (const span of spans) endSpan(span, error);
    throw error;
  }
}

/** A column a many-row move sets to each row's own value (`type` the Postgres type of the values). */
export interface EachValue<R> {
  readonly column: string;
  readonly type: string;
  readonly of: (row: R) => unknown;
}

/**
 * Moves many rows of `table` along `move` in one statement, each row setting `values` to its
 * own; `set` adds assignments and `where` conditions alike for all (the table is `t` in them).
 * Answers, per row in the order given, whether it was in one of `move.from` and so took part.
 */
export async function compareAndSwapEach<S extends string, R extends { readonly id: string }>(
  db: Db,
  table: StatefulTable<object>,
  move: Move<S>,
  rows: readonly R[],
  values: ReadonlyArray<EachValue<R>>,
  extra: { readonly set?: readonly string[]; readonly where?: readonly string[] } = {},
): Promise<boolean[]> {
  const p = new Params();
  const ids = rows.map((r) => r.id);
  const unnest = [`${p.add(ids)}::uuid[]`, ...values.map((v) => `${p.add(rows.map(v.of))}::${v.type}[]`)];
  const sets = [
    ...enter(table, move.to, p),
    ...values.map((v) => `${v.column} = x.${v.column}`),
    ...(extra.set ?? []),
  ];
  const where = [
    't.id = x.id',
    ...liveRows(table, 't.'),
    stateIn(table, 't.', move.from, p),
    ...(extra.where ?? []),
  ];
  return tracingMoves(
    move,
    ids,
    undefined,
    async () =>
      tookPart(
        ids,
        await updateReturning(
          db,
          `UPDATE ${table.table} t SET ${sets.join(', ')}
             FROM unnest(${unnest.join(', ')}) AS x(id${values.map((v) => `, ${v.column}`).join('')})
            WHERE ${where.join(' AND ')} RETURNING t.id`,
          p.values,
        ),
      ),
    (moved) => moved,
  );
}

/**
 * Each of `ids` with its row among `rows` (undefined if none): a statement over many rows answers
 * in the order it was asked, whatever order its rows came in.
 */
export function rowsInOrder(ids: readonly string[], rows: readonly Row[]): Array<Row | undefined> {
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  return ids.map((id) => byId.get(id));
}

/** Whether each of `ids` is among the rows a statement changed. */
export function tookPart(ids: readonly string[], rows: readonly Row[]): boolean[] {
  return rowsInOrder(ids, rows).map((row) => row !== undefined);
}

export function date(value: unknown): Date | null {
  return value === null || value === undefined ? null : new Date(value as string);
}
