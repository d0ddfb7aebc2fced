import { isRetryable } from '@basalt/errors';
import type { Middleware } from './server';

/** One line when a handler starts and one when it ends, with its duration and outcome. */
export const loggingMiddleware: Middleware = (next) => async (invocation) => {
  const started = performance.now();
  invocation.log.debug({ kind: invocation.kind, version: invocation.version }, 'rpc handler start');
  try {
    const result = await next(invocation);
    invocation.log.info({ kind: invocation.kind, ms: Math.round(performance.now() - started) }, 'rpc handled');
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
