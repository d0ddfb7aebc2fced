import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from './file-lock';

describe('withFileLock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'basalt-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('holders of one lock file take turns; the file goes when the work ends, even on failure', async () => {
    const lock = join(dir, 'a.lock');
    const events: string[] = [];
    const work =
      (name: string, fail = false) =>
      async () => {
        events.push(`${name}:start`);
        await sleep(30);
        events.push(`${name}:end`);
        if (fail) throw new Error(name);
      };
    await Promise.all([
      withFileLock(lock, work('one', true)).catch(() => undefined),
      withFileLock(lock, work('two')),
    ]);
    expect(events).toEqual(['one:start', 'one:end', 'two:start', 'two:end']);
    expect(existsSync(lock)).toBe(false);
  });

  test('a lock left by a process that died is taken over; one held by a live process is waited for', async () => {
    const lock = join(dir, 'b.lock');
    const dead = spawnSync('true').pid;
    writeFileSync(lock, String(dead));
    await expect(withFileLock(lock, async () => 'taken')).resolves.toBe('taken');

    writeFileSync(lock, String(process.pid));
    await expect(withFileLock(lock, async () => 'never', 300)).rejects.toThrow('stayed locked');
    rmSync(lock);
  });
});
