import { InvalidInputError } from '@basalt/errors';
import type { FastifyRequest } from 'fastify';
import { type ListSpec, nextLinks, parseList } from './list-query';

const SPEC: ListSpec<'created_at' | 'size' | 'name'> = {
  sortKeys: ['created_at', 'size', 'name'],
  filters: ['name', 'status'],
  adminFilters: ['host'],
};
const member = { isAdmin: false, version: '3.40' };
const admin = { isAdmin: true, version: '3.40' };
const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error('not refused');
};

describe('list queries as Cinder parses them', () => {
  test('limit: the default and the cap are osapi_max_limit; bad ones are refused in its words', () => {
    expect(parseList({}, SPEC, 1000, member).page.limit).toBe(1000);
    expect(parseList({ limit: '5000' }, SPEC, 1000, member).page.limit).toBe(1000);
    expect(parseList({ limit: '3' }, SPEC, 1000, member).page.limit).toBe(3);
    expect(refusal(() => parseList({ limit: 'x' }, SPEC, 10, member))).toBe('limit param must be an integer');
    expect(refusal(() => parseList({ limit: '-1' }, SPEC, 10, member))).toBe('limit param must be positive');
    expect(refusal(() => parseList({ offset: '-1' }, SPEC, 10, member))).toBe('offset must be >= 0');
    expect(parseList({ offset: '4' }, SPEC, 10, member).page.offset).toBe(4);
  });
  test('sort: keys with directions, desc by default; sort_key/sort_dir, never with sort', () => {
    expect(parseList({ sort: 'size:asc,name' }, SPEC, 10, member).page.sort).toEqual([
      { key: 'size', dir: 'asc' },
      { key: 'name', dir: 'desc' },
    ]);
    expect(parseList({}, SPEC, 10, member).page.sort).toEqual([{ key: 'created_at', dir: 'desc' }]);
    expect(parseList({ sort_key: 'size', sort_dir: 'asc' }, SPEC, 10, member).page.sort).toEqual([
      { key: 'size', dir: 'asc' },
    ]);
    expect(refusal(() => parseList({ sort: 'provider_auth:asc' }, SPEC, 10, member))).toBe(
      'Invalid input received: Invalid sort key',
    );
    expect(refusal(() => parseList({ sort: 'size:up' }, SPEC, 10, member))).toBe(
      "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
    );
    expect(refusal(() => parseList({ sort: 'size', sort_key: 'name' }, SPEC, 10, member))).toMatch(
      /cannot be used with the 'sort' parameter/,
    );
  });
  test('filters: a member gets the offered ones, an unknown one is dropped before 3.31 and refused after', () => {
    expect(parseList({ name: 'a', status: 'error' }, SPEC, 10, member).filters).toEqual({
      name: 'a',
      status: 'error',
    });
    expect(refusal(() => parseList({ host: 'h', foo: '1' }, SPEC, 10, member))).toBe(
      'Invalid filters host,foo are found in query options.',
    );
    expect(parseList({ host: 'h' }, SPEC, 10, { isAdmin: false, version: '3.30' }).filters).toEqual({});
    // cinderclient always sends all_tenants: never held against a member
    expect(parseList({ all_tenants: '1' }, SPEC, 10, member).allTenants).toBe(true);
  });
  test('filters: an admin also gets the admin ones; a column the resource lacks matches nothing', () => {
    expect(parseList({ host: 'h' }, SPEC, 10, admin)).toMatchObject({
      filters: { host: 'h' },
      matchesNothing: false,
    });
    expect(parseList({ foo: '1' }, SPEC, 10, admin).matchesNothing).toBe(true);
  });
  test('before the resource paginates, only the limit and its old order count', () => {
    const legacy: ListSpec<'created_at'> = {
      sortKeys: ['created_at'],
      filters: [],
      paginatedFrom: '3.59',
      legacySort: [{ key: 'created_at', dir: 'asc' }],
    };
    const q = parseList({ limit: '2', marker: 'm', sort: 'x', foo: 'y' }, legacy, 10, member);
    expect(q.page).toEqual({ limit: 2, offset: 0, sort: [{ key: 'created_at', dir: 'asc' }] });
    expect(q.filters).toEqual({});
  });
});

describe('next links', () => {
  const req = (url: string, query: Record<string, string>) => ({ url, query }) as unknown as FastifyRequest;
  test('a full page links to the same request after its last item, the project as the URL had it', () => {
    const [link] = nextLinks(
      req('/v3/p1/volumes?limit=2&sort=size:asc', { limit: '2', sort: 'size:asc' }),
      'http://h:1',
      'p1',
      'volumes',
      ['a', 'b'],
      2,
    );
    expect(link).toEqual({ rel: 'next', href: 'http://h:1/v3/p1/volumes?limit=2&sort=size%3Aasc&marker=b' });
    const [bare] = nextLinks(req('/v3/messages', { marker: 'x' }), 'http://h:1', 'p1', 'messages', ['c'], 1);
    expect(bare?.href).toBe('http://h:1/v3/messages?marker=c');
  });
  test('a short page or an empty one has none', () => {
    expect(nextLinks(req('/v3/p1/volumes', {}), 'http://h', 'p1', 'volumes', ['a'], 2)).toEqual([]);
    expect(nextLinks(req('/v3/p1/volumes', {}), 'http://h', 'p1', 'volumes', [], 0)).toEqual([]);
  });
});
