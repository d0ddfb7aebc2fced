import { errorMessage } from '@basalt/errors';
import type { Logger } from '@basalt/log';

/** A task run every so often, never overlapping itself; `stop` ends it and waits for a run in progress. */
export interface PeriodicTask {
  stop(): Promise<void>;
}

/**
 * Runs `task` every `intervalSec`. A run that is still going when the next is due is not overtaken
 * (a slow pass over many volumes must not pile up behind itself); a failed run is logged as
 * `what` failed and the next one happens as usual.
 */
export function startPeriodic(
  what: string,
  intervalSec: number,
  task: () => Promise<unknown>,
  log: Logger,
): PeriodicTask {
  let running: Promise<void> | undefined;
  const tick = () => {
    running ??= task()
      .then(
        () => undefined,
        (error) => log.warn({ err: errorMessage(error) }, `${what} failed`),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalSec * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
