/**
 * Preloaded (`node --require`) into the processes of a bench:volumes stack whose tracing is off:
 * the async context that tracing's parent links need and nothing else. OpenTelemetry's
 * AsyncLocalStorage context manager is installed and entered once, so that from then on Node's
 * async hooks follow every promise and callback of the process, as they do once tracing starts.
 */
const { context, ROOT_CONTEXT } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
context.with(ROOT_CONTEXT, () => undefined);
