import { KeyedLock } from './keyed-lock';

test('work on one key never interleaves; other keys run alongside; a failure does not block the next', async () => {
  const lock = new KeyedLock();
  const events: string[] = [];
  const step =
    (name: string, ms: number, fail = false) =>
    async () => {
      events.push(`${name}:start`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`${name}:end`);
      if (fail) throw new Error(name);
      return name;
    };
  const a1 = lock.run('a', step('a1', 30, true));
  const a2 = lock.run('a', step('a2', 10));
  const b1 = lock.run('b', step('b1', 5));
  await expect(a1).rejects.toThrow('a1');
  await expect(a2).resolves.toBe('a2');
  await expect(b1).resolves.toBe('b1');
  expect(events.indexOf('a2:start')).toBeGreaterThan(events.indexOf('a1:end'));
  expect(events.indexOf('b1:start')).toBeLessThan(events.indexOf('a1:end'));
});
