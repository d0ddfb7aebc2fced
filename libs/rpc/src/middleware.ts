import { errorMessage, isRetryable } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { sleep } from './connection';
import type { Middleware } from './server';

/**
 * Wraps `base` in `middlewares`, the first the outermost: it runs first on the way in and last on
 * the way out. The one rule of order for both the server's handlers and the client's sends.
 */
export function compose<H>(middlewares: readonly ((next: H) => H)[], base: H): H {
  return middlewares.reduceRight<H>((next, middleware) => middleware(next), base);
}

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

export interface RetryOptions {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** Wait before the first retry; doubled for each one after. */
  readonly backoffMs: number;
  /** Whether an error says the same work may succeed if run again. */
  readonly retryable: (error: unknown) => boolean;
}

/**
 * Runs a failed handler again when its error says a retry may succeed (a database connection
 * that dropped, a deadlock). Handlers are idempotent, so a second run is harmless, and work that
 * would otherwise end as an acknowledged failure (a volume left `creating`) gets done.
 */
export function retryMiddleware(options: RetryOptions): Middleware {
  return (next) => async (invocation) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(invocation);
      } catch (error) {
        if (attempt >= options.attempts || !options.retryable(error)) throw error;
        const waitMs = options.backoffMs * 2 ** (attempt - 1);
        invocation.log.warn(
          { attempt, wait_ms: waitMs, err: errorMessage(error) },
          'handler failed, retrying',
        );
        await sleep(waitMs);
      }
    }
  };
}
