import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks `check` until it returns something other than `undefined` or `timeoutMs` has passed (then
 * `undefined`). For states that settle some time after the command that changes them returned:
 * a detach the guest completes later, a device node udev creates after a login.
 */
export async function pollFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    await sleep(Math.min(intervalMs, left));
  }
}
