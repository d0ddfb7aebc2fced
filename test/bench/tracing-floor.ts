/**
 * Tracing's floors for bench:rpc: the least a traced message costs in a real process. One bare
 * SDK span per message at each end, the handler run in its span's context (what its children
 * need), and nothing else: no request ids, no ids carried in the message. The bare floor stores
 * nothing; the stored floor writes its spans to PostgreSQL as Basalt writes its own, since the
 * spans must be stored.
 */
import type { ClientMiddleware, Middleware } from '@basalt/rpc';
import { PostgresSpanProcessor, SPAN_BUFFER_DEFAULTS, type SqlClient } from '@basalt/trace';
import { context, ROOT_CONTEXT, type Span, SpanKind, type Tracer, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

/** The SDK and where its spans go: nowhere (no processor), or to `db` through Basalt's PostgreSQL processor. */
export interface FloorTracer {
  readonly tracer: Tracer;
  /** Writes what is buffered (nothing, for the bare floor). */
  flush(): Promise<void>;
}

export function floorTracer(serviceName: string, db?: SqlClient): FloorTracer {
  const provider = new BasicTracerProvider(
    db
      ? {
          resource: resourceFromAttributes({ 'service.name': serviceName, 'host.name': 'bench' }),
          spanProcessors: [
            new PostgresSpanProcessor(db, SPAN_BUFFER_DEFAULTS, (what, error) =>
              console.error(`the stored floor's ${what} failed: ${String(error)}`),
            ),
          ],
        }
      : {},
  );
  return { tracer: provider.getTracer('bench'), flush: () => provider.forceFlush() };
}

/** One SDK span, as the tracing middlewares make it but with no request ids and none carried in the message. */
function bareSpan(tracer: Tracer, name: string, kind: SpanKind, destination: string, method: string): Span {
  const span = tracer.startSpan(name, { kind }, ROOT_CONTEXT);
  span.setAttributes({
    'messaging.system': 'rabbitmq',
    'messaging.destination.name': destination,
    'messaging.operation.type': kind === SpanKind.CLIENT || kind === SpanKind.PRODUCER ? 'send' : 'process',
    'rpc.method': method,
  });
  return span;
}

/** Tracing's floor on the server: a bare span per message handled, the handler run in its context (what its children need). */
export function bareServerSpans(topic: string, { tracer }: FloorTracer): Middleware {
  return (next) => async (invocation) => {
    const kind = invocation.kind === 'call' ? SpanKind.SERVER : SpanKind.CONSUMER;
    const span = bareSpan(tracer, `${topic}.${invocation.method}`, kind, topic, invocation.method);
    try {
      return await context.with(trace.setSpan(ROOT_CONTEXT, span), next, undefined, invocation);
    } finally {
      span.end();
    }
  };
}

/** Tracing's floor on the client: a bare span per message sent. */
export function bareClientSpans({ tracer }: FloorTracer): ClientMiddleware {
  return (next) => async (message) => {
    const kind = message.kind === 'call' ? SpanKind.CLIENT : SpanKind.PRODUCER;
    const { topic } = message.target;
    const span = bareSpan(tracer, `${message.kind} ${topic}.${message.method}`, kind, topic, message.method);
    try {
      return await next(message);
    } finally {
      span.end();
    }
  };
}
