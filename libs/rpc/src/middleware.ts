import { isRetryable } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import type { Middleware } from './server';

/**
 * One line when a handler ends, with its duration and outcome. `base` is the process logger: its
 * level decides whether the per-request logger is worth creating at all.
 */
export function loggingMiddleware(base: Logger): Middleware {
  return (next) => async (invocation) => {
    const started = performance.now();
    try {
      const result = await next(invocation);
      if (base.isLevelEnabled('info')) {
        invocation.log.info(
          { kind: invocation.kind, ms: Math.round(performance.now() - started) },
          'rpc handled',
        );
      }
      return result;
    } catch (error) {
      invocation.log.warn(
        {
          kind: invocation.kind,
          ms: Math.round(performance.now() - started),
          err: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          retryable: isRetryable(error),
        },
        'rpc handler raised',
      );
      throw error;
    }
  };
}
