/** The processes that change a resource's state; every move of a state table names which may make it. */
export type Actor = 'api' | 'scheduler' | 'volume-worker' | 'compute-worker';

/** A move as declared: from any of `from` to `to` (or, for a move whose caller names the target, to one of a list). */
export interface MoveSpec<S extends string> {
  readonly from: readonly S[];
  readonly to: S | readonly S[];
  readonly by: readonly Actor[];
}

/** A declared move, named, with its one target: what a compare-and-swap is given. */
export interface Move<S extends string = string> {
  readonly resource: string;
  readonly name: string;
  readonly from: readonly S[];
  readonly to: S;
  readonly by: readonly Actor[];
}

/** A declared move whose caller picks the target among `to` (an admin's reset); `StateTable.toward` makes it a Move. */
export interface OpenMove<S extends string = string> {
  readonly resource: string;
  readonly name: string;
  readonly from: readonly S[];
  readonly to: readonly S[];
  readonly by: readonly Actor[];
}

type Built<S extends string, T> = T extends { to: readonly unknown[] } ? OpenMove<S> : Move<S>;
type Moves<S extends string, M> = { readonly [K in keyof M]: Built<S, M[K]> };
type MovesOf<S extends string, M, A extends Actor> = {
  readonly [K in keyof M as M[K] extends { by: readonly (infer B)[] }
    ? A extends B
      ? K
      : never
    : never]: Built<S, M[K]>;
};

/**
 * One resource's states and every move between them. The states list is what the database's
 * CHECK constraint allows (a test compares the two); the moves are the only transitions any
 * compare-and-swap makes, each with the processes allowed to make it.
 */
export interface StateTable<S extends string, M> {
  readonly resource: string;
  readonly states: readonly S[];
  readonly moves: Moves<S, M>;
  /** The moves `actor` may make, and only those: a process that names another does not compile. */
  movesOf<A extends Actor>(actor: A): MovesOf<S, M, A>;
  /** The states any of `moves` starts from, in the table's order. */
  sourcesOf(...moves: ReadonlyArray<Move<S> | OpenMove<S>>): readonly S[];
  /** `move` aimed at `target`, which must be one of its targets. */
  toward(move: OpenMove<S>, target: S): Move<S>;
}

/**
 * Declares a resource's state table. Moves are checked here, once, at load: every state a move
 * names must be in `states`, and every move needs at least one actor.
 */
export function stateTable<const S extends string, const M extends Record<string, MoveSpec<NoInfer<S>>>>(
  resource: string,
  states: readonly S[],
  specs: M,
): StateTable<S, M> {
  const known = new Set<string>(states);
  const moves: Record<string, Move<S> | OpenMove<S>> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const targets: readonly S[] = typeof spec.to === 'string' ? [spec.to] : spec.to;
    const unknown = [...spec.from, ...targets].filter((s) => !known.has(s));
    if (unknown.length > 0)
      throw new Error(`${resource} move ${name} names unknown states: ${unknown.join(', ')}`);
    if (spec.by.length === 0 || spec.from.length === 0 || targets.length === 0)
      throw new Error(`${resource} move ${name} needs a source, a target and an actor`);
    moves[name] = Object.freeze({ resource, name, from: spec.from, to: spec.to, by: spec.by }) as
      | Move<S>
      | OpenMove<S>;
  }
  return {
    resource,
    states,
    moves: moves as Moves<S, M>,
    movesOf: (actor) =>
      Object.fromEntries(Object.entries(moves).filter(([, m]) => m.by.includes(actor))) as MovesOf<
        S,
        M,
        typeof actor
      >,
    sourcesOf: (...among) => {
      const from = new Set(among.flatMap((m) => m.from));
      return states.filter((s) => from.has(s));
    },
    toward: (move, target) => {
      if (!move.to.includes(target))
        throw new Error(`${resource} move ${move.name} cannot lead to ${target}`);
      return { ...move, to: target };
    },
  };
}
