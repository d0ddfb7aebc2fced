import { ExpiringLru } from './expiring-lru';

describe('ExpiringLru', () => {
  let now = 1_000;
  const clock = () => now;

  test('evicts the least recently used entry when full', () => {
    const lru = new ExpiringLru<string>(2, clock);
    lru.set('a', 'A', 10_000);
    lru.set('b', 'B', 10_000);
    expect(lru.get('a')).toBe('A'); // a is now the most recent
    lru.set('c', 'C', 10_000);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe('A');
    expect(lru.get('c')).toBe('C');
    expect(lru.size).toBe(2);
  });

  test('an entry is gone once it expires, and a past expiry is never stored', () => {
    const lru = new ExpiringLru<string>(10, clock);
    lru.set('a', 'A', 2_000);
    lru.set('old', 'O', 1_000);
    expect(lru.size).toBe(1);
    now = 1_999;
    expect(lru.get('a')).toBe('A');
    now = 2_000;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.size).toBe(0);
  });

  test('size 0 stores nothing', () => {
    const lru = new ExpiringLru<string>(0, clock);
    lru.set('a', 'A', 1e12);
    expect(lru.get('a')).toBeUndefined();
  });
});
