import { InvalidInputError } from '@basalt/errors';
import { listFlavors } from './flavor-list-query';

const ids = (query: Record<string, unknown>, isAdmin = false, maxLimit = 1000) =>
  listFlavors(query, maxLimit, isAdmin).flavors.map((f) => f.id);

describe('listFlavors', () => {
  test('by flavor id ascending unless sorted otherwise; the direction also orders ties by row', () => {
    expect(ids({})).toEqual(['1', '2', '3', '4', '5']);
    expect(ids({ sort_dir: 'desc' })).toEqual(['5', '4', '3', '2', '1']);
    expect(ids({ sort_key: 'memory_mb', sort_dir: 'desc' })).toEqual(['5', '4', '3', '2', '1']);
    expect(ids({ sort_key: 'vcpus' })).toEqual(['1', '2', '3', '4', '5']);
    expect(ids({ sort_key: 'vcpus', sort_dir: 'desc' })).toEqual(['5', '4', '3', '2', '1']);
    // every default flavor has one swap: the rows' order, in the direction asked
    expect(ids({ sort_key: 'swap', sort_dir: 'desc' })).toEqual(['5', '4', '3', '2', '1']);
    // a repeated parameter: nova reads the last (m1.xlarge, m1.tiny, m1.small, m1.medium, m1.large)
    expect(ids({ sort_key: ['name', 'name'], sort_dir: ['asc', 'desc'] })).toEqual(['5', '1', '2', '3', '4']);
  });

  test('limit, then the page after the marker in the same order; the limit tells when a page is full', () => {
    expect(listFlavors({ limit: '2' }, 1000, false)).toMatchObject({ limit: 2 });
    expect(ids({ limit: '2' })).toEqual(['1', '2']);
    expect(ids({ limit: '2', marker: '2' })).toEqual(['3', '4']);
    expect(ids({ marker: '4', sort_dir: 'desc' })).toEqual(['3', '2', '1']);
    expect(ids({ limit: '0' })).toEqual([]);
    expect(listFlavors({ limit: '9' }, 3, false)).toMatchObject({ limit: 3 });
    expect(ids({}, false, 3)).toEqual(['1', '2', '3']);
  });

  test('minRam and minDisk keep the flavors at or above them, read as Python reads an int', () => {
    expect(ids({ minRam: '2049' })).toEqual(['3', '4', '5']);
    expect(ids({ minRam: ' 2048 ' })).toEqual(['2', '3', '4', '5']);
    expect(ids({ minDisk: '41' })).toEqual(['4', '5']);
    expect(ids({ minDisk: '-1', minRam: '1_000' })).toEqual(['2', '3', '4', '5']);
    expect(ids({ minDisk: '11', marker: '4' })).toEqual(['5']);
  });

  test("is_public is an admin's filter: none is every flavor, false none of these; others see the public ones", () => {
    expect(ids({ is_public: 'false' }, true)).toEqual([]);
    expect(ids({ is_public: 'None' }, true)).toHaveLength(5);
    expect(ids({ is_public: ' Yes ' }, true)).toHaveLength(5);
    expect(ids({ is_public: 'false' }, false)).toHaveLength(5);
    expect(() => ids({ is_public: 'maybe' }, true)).toThrow(
      new InvalidInputError('Invalid is_public filter [maybe]'),
    );
  });

  test('bad values are 400s with nova’s words, and names nova does not know are ignored', () => {
    expect(() => ids({ limit: '-1' })).toThrow(
      new InvalidInputError(
        "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
      ),
    );
    expect(() => ids({ sort_key: 'colour' })).toThrow(
      /^Invalid input for query parameters sort_key\. Value: colour\. 'colour' is not one of \['created_at', 'description', .*'vcpus'\]$/,
    );
    expect(() => ids({ sort_dir: 'up' })).toThrow(
      new InvalidInputError(
        "Invalid input for query parameters sort_dir. Value: up. 'up' is not one of ['asc', 'desc']",
      ),
    );
    expect(() => ids({ marker: '42' })).toThrow(new InvalidInputError('marker [42] not found'));
    expect(() => ids({ minRam: '1.5' })).toThrow(new InvalidInputError('Invalid minRam filter [1.5]'));
    expect(() => ids({ minDisk: '' })).toThrow(new InvalidInputError('Invalid minDisk filter []'));
    expect(ids({ colour: 'blue' })).toHaveLength(5);
  });
});
