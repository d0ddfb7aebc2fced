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
 * to its column; with `softDelete`, rows in the final state `deleted` stay with `deleted` set,
 * and no move touches them.
 */
export interface StatefulTable<C extends object> {
  readonly table: string;
  readonly stateColumn: string;
  readonly columns: { readonly [K in keyof C]-?: string };
  readonly softDelete: boolean;
}

/** The WHERE conditions every statement on the table's rows starts from. */
export function liveRows(table: StatefulTable<object>, alias = ''): string[] {
  return table.softDelete ? [`NOT ${alias}deleted`] : [];
}

/**
 * Moves row `id` of `table` along `move` (from any of `move.from` to `move.to`), setting `changes`
 * and `updated_at` in the same statement: `UPDATE … WHERE state = ANY(from)`, so the row count
 * says whether this caller won and nothing reads a state before writing it. Returns the updated
 * row, or undefined when the row was not in any of `move.from`.
 */
export async function compareAndSwap<S extends string, C extends object>(
  db: Db,
  table: StatefulTable<C>,
  id: string,
  move: Move<S>,
  changes: C,
): Promise<Row | undefined> {
  const p = new Params();
  const where = [
    `id = ${p.add(id)}`,
    ...liveRows(table),
    `${table.stateColumn} = ANY(${p.add([...move.from])})`,
  ];
  const sets = [`${table.stateColumn} = ${p.add(move.to)}`, 'updated_at = now()'];
  if (table.softDelete && move.to === 'deleted') sets.push('deleted = true', 'deleted_at = now()');
  for (const [key, value] of Object.entries(changes)) {
    if (value !== undefined) sets.push(`${table.columns[key as keyof C]} = ${p.add(value)}`);
  }
  const [row] = await updateReturning(
    db,
    `UPDATE ${table.table} SET ${sets.join(', ')} WHERE ${where.join(' AND ')} RETURNING *`,
    p.values,
  );
  return row;
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
