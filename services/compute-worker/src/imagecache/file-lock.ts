import { open, readFile, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BasaltError } from '@basalt/errors';

/**
 * Runs `work` while holding `path` as a lock file, so that two processes (two compute workers
 * sharing an instances_path, a worker and its restarted self) never build one cache file at
 * once. The file holds the owner's pid; a lock whose owner died is taken over.
 */
export async function withFileLock<T>(path: string, work: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o644);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await ownerDied(path)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (performance.now() > deadline) {
      throw new BasaltError(`${path} stayed locked for ${timeoutMs / 1000} s`, { retryable: true });
    }
    await sleep(100);
  }
  try {
    return await work();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

async function ownerDied(path: string): Promise<boolean> {
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    // an empty file is a lock being written this very moment, unless it has been empty for long
    const written = await stat(path).then(
      (s) => s.mtimeMs,
      () => Date.now(),
    );
    return Date.now() - written > 10_000;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
