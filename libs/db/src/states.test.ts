import { stateTable } from './states';
import { VOLUME_STATES, VOLUME_STATUSES } from './volume-states';

describe('state tables', () => {
  const table = stateTable('thing', ['new', 'ready', 'gone'], {
    start: { from: ['new'], to: 'ready', by: ['compute-worker'] },
    remove: { from: ['new', 'ready'], to: 'gone', by: ['api', 'compute-worker'] },
    reset: { from: ['new', 'ready'], to: ['new', 'ready'], by: ['api'] },
  });

  test('a move carries its resource, name, sources, target and actors', () => {
    expect(table.moves.start).toEqual({
      resource: 'thing',
      name: 'start',
      from: ['new'],
      to: 'ready',
      by: ['compute-worker'],
    });
  });

  test('an actor gets only the moves it may make', () => {
    expect(Object.keys(table.movesOf('api'))).toEqual(['remove', 'reset']);
    expect(Object.keys(table.movesOf('compute-worker'))).toEqual(['start', 'remove']);
    expect(Object.keys(table.movesOf('scheduler'))).toEqual([]);
  });

  test('a move naming an unknown state, or without an actor, does not load', () => {
    expect(() =>
      stateTable('thing', ['new'], { start: { from: ['new'], to: 'ready' as 'new', by: ['api'] } }),
    ).toThrow('thing move start names unknown states: ready');
    expect(() => stateTable('thing', ['new'], { stay: { from: ['new'], to: 'new', by: [] } })).toThrow(
      'thing move stay needs a source, a target and an actor',
    );
  });

  test('an open move is aimed at one of its targets, and only those', () => {
    expect(table.toward(table.moves.reset, 'new')).toMatchObject({ name: 'reset', to: 'new' });
    expect(() => table.toward(table.moves.reset, 'gone')).toThrow('thing move reset cannot lead to gone');
  });

  test('sources are the states the given moves start from, in the table order', () => {
    expect(table.sourcesOf(table.moves.start, table.moves.remove)).toEqual(['new', 'ready']);
  });

  test('volumes: deleted is a state, no move leaves it, and an admin resets to every other state', () => {
    expect(VOLUME_STATES.states).toContain('deleted');
    for (const move of Object.values(VOLUME_STATES.moves)) expect(move.from).not.toContain('deleted');
    expect(VOLUME_STATES.moves.reset.to).toEqual(VOLUME_STATUSES.filter((s) => s !== 'deleted'));
  });
});
