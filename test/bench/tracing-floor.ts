/**
 * Tracing's floor for bench:rpc: the least a traced message costs in a real process. One bare SDK
 * span per message at each end, the handler run in its span's context (what its children need),
 * and nothing else: no processor, no request ids, no ids carried in the message, nothing stored.
 */
import type { ClientMiddleware, Middleware } from '@basalt/rpc';
import { context, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

/** The SDK alone, no processor: its spans are made, ended and forgotten. */
const bareTracer = () => new BasicTracerProvider().getTracer('bench');

/** One SDK span, as the tracing middlewares make it but with no request ids, none carried in the message, nothing stored. */
function bareSpan(
  tracer: ReturnType<typeof bareTracer>,
  name: string,
  kind: SpanKind,
  destination: string,
  method: string,
): Span {
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
export function bareServerSpans(topic: string): Middleware {
  const tracer = bareTracer();
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
export function bareClientSpans(): ClientMiddleware {
  const tracer = bareTracer();
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
