import { InvalidStateError, NotFoundError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { compareAndSwap, liveRows, type Row, type StatefulTable } from './sql';
import type { Move } from './states';

/** What the repository of a resource with a status column (a volume, a snapshot) is made of. */
export interface StatefulResource<R, C extends object> {
  readonly table: StatefulTable<C>;
  /** Its name in Cinder's faults: `Volume`, `Snapshot`. */
  readonly noun: string;
  readonly toRecord: (row: Row) => R;
}

/**
 * Reading a live row and moving it along its state table, the same for every such resource:
 * Cinder's not-found fault for a missing row, its "status must be" fault for a lost race.
 */
export class StatefulRepository<R extends { readonly status: S }, S extends string, C extends object> {
  constructor(
    protected readonly ds: DataSource,
    private readonly resource: StatefulResource<R, C>,
  ) {}

  async find(id: string): Promise<R | undefined> {
    const { table, toRecord } = this.resource;
    const rows = await this.ds.query(
      `SELECT * FROM ${table.table} WHERE ${['id = $1', ...liveRows(table)].join(' AND ')}`,
      [id],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async get(id: string): Promise<R> {
    const found = await this.find(id);
    if (!found) throw this.notFound(id);
    return found;
  }

  /**
   * Moves a live row along `move`, setting `changes` in the same statement. Returns the updated
   * row, or undefined when it was not in any of `move.from`.
   */
  async transition(id: string, move: Move<S>, changes: C = {} as C): Promise<R | undefined> {
    const row = await compareAndSwap(this.ds, this.resource.table, id, move, changes);
    return row ? this.resource.toRecord(row) : undefined;
  }

  /** Like `transition`, but a lost race is an error naming the state the row is really in. */
  async transitionOrThrow(id: string, move: Move<S>, changes: C = {} as C): Promise<R> {
    const updated = await this.transition(id, move, changes);
    if (updated) return updated;
    throw this.invalidState(id, move, (await this.get(id)).status);
  }

  protected notFound(id: string): NotFoundError {
    const { noun } = this.resource;
    return new NotFoundError(`${noun} ${id} could not be found.`, {
      data: { [`${noun.toLowerCase()}_id`]: id },
    });
  }

  protected invalidState(id: string, move: Move<S>, status: S): InvalidStateError {
    const { noun } = this.resource;
    return new InvalidStateError(
      `Invalid ${noun.toLowerCase()}: ${noun} ${id} status must be ${move.from.join(' or ')}, but current status is: ${status}.`,
      { data: { [`${noun.toLowerCase()}_id`]: id, status } },
    );
  }
}
