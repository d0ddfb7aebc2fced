import { parseTraceparent, type RequestContext } from '@basalt/context';
import { type Logger, requestLogger } from '@basalt/log';
import {
  activeSpan,
  context,
  contextOfRequest,
  contextWithSpan,
  endSpan,
  metrics,
  outcomeOf,
  SpanKind,
  startSpan,
  traceparentOf,
} from '@basalt/trace';
import type { ClientMiddleware, Target } from './client';
import type { Invocation, Middleware } from './server';

/** Milliseconds the message waited between its sender and now (its handler's start), if it says when it was sent. */
export function queueWaitMs(ctx: RequestContext, now = Date.now()): number | undefined {
  return ctx.sentAt === undefined ? undefined : Math.max(0, now - ctx.sentAt);
}

/** The invocation continued in the handler's own span: its messages and log lines name that span. */
class ContinuedInvocation implements Invocation {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly kind: 'call' | 'cast';
  readonly version: string;
  readonly namespace?: string;
  private logger?: Logger;

  constructor(
    invocation: Invocation,
    readonly context: RequestContext,
    private readonly base: Logger,
    private readonly topic: string,
  ) {
    this.method = invocation.method;
    this.args = invocation.args;
    this.kind = invocation.kind;
    this.version = invocation.version;
    if (invocation.namespace !== undefined) this.namespace = invocation.namespace;
  }

  get log(): Logger {
    this.logger ??= requestLogger(this.base, this.context, { method: this.method, topic: this.topic });
    return this.logger;
  }
}

/**
 * A span per message handled, `<topic>.<method>`, the child of the sender's span, with the time
 * the message waited in the queue beside the handler's own; the handler runs in it, so what it
 * does (commands, tgtd requests, status changes, messages it sends) are its children. `log` is the
 * process logger the continued invocation's log lines come from.
 */
export function serverTracing(topic: string, log: Logger): Middleware {
  return (next) => async (invocation) => {
    const wait = queueWaitMs(invocation.context);
    const parent = contextOfRequest(invocation.context);
    const span = startSpan(`${topic}.${invocation.method}`, {
      kind: invocation.kind === 'call' ? SpanKind.SERVER : SpanKind.CONSUMER,
      parent,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.destination.name': topic,
        'messaging.operation.type': 'process',
        'rpc.method': invocation.method,
      },
    });
    if (wait !== undefined) span.setAttribute('messaging.basalt.queue_wait_ms', wait);
    const continued = new ContinuedInvocation(
      invocation,
      { ...invocation.context, traceparent: traceparentOf(span) ?? invocation.context.traceparent },
      log,
      topic,
    );
    try {
      const result = await context.with(contextWithSpan(parent, span), next, undefined, continued);
      endSpan(span);
      return result;
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  };
}

/** Messages handled by method and outcome, the handlers' durations and the queue wait before them. */
export function serverMetrics(topic: string): Middleware {
  return (next) => async (invocation) => {
    const wait = queueWaitMs(invocation.context);
    const labels = { topic, method: invocation.method };
    if (wait !== undefined) metrics.rpcQueueWaitSeconds.observe(labels, wait / 1000);
    const started = performance.now();
    try {
      const result = await next(invocation);
      metrics.rpcHandled.inc({ ...labels, kind: invocation.kind, outcome: 'ok' });
      return result;
    } catch (error) {
      metrics.rpcHandled.inc({ ...labels, kind: invocation.kind, outcome: outcomeOf(error) });
      throw error;
    } finally {
      metrics.rpcHandlerSeconds.observe(labels, (performance.now() - started) / 1000);
    }
  };
}

/** The topic, and the server or fanout, a message goes to: `volume.host1`, `scheduler_fanout`. */
const destination = (target: Target) =>
  `${target.topic}${target.fanout ? '_fanout' : target.server ? `.${target.server}` : ''}`;

/**
 * A span per call or cast sent, `<kind> <destination>.<method>`: the child of the span the caller
 * runs in (its handler, its HTTP request) when that is the message's trace, else of the message's
 * own context. The message then names this span as its parent, so the receiver's span hangs
 * under it and a whole user action is one tree.
 */
export function clientTracing(): ClientMiddleware {
  return (next) => async (message) => {
    const caller = activeSpan();
    const parent =
      caller && caller.spanContext().traceId === parseTraceparent(message.context.traceparent)?.traceId
        ? context.active()
        : contextOfRequest(message.context, context.active());
    const span = startSpan(`${message.kind} ${destination(message.target)}.${message.method}`, {
      kind: message.kind === 'call' ? SpanKind.CLIENT : SpanKind.PRODUCER,
      parent,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.destination.name': destination(message.target),
        'messaging.operation.type': 'send',
        'rpc.method': message.method,
      },
    });
    try {
      const result = await next({
        ...message,
        context: { ...message.context, traceparent: traceparentOf(span) ?? message.context.traceparent },
      });
      endSpan(span);
      return result;
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  };
}

/** Messages sent by topic, method, kind and outcome, and how long each took (to the reply, or to the broker's confirm). */
export function clientMetrics(): ClientMiddleware {
  return (next) => async (message) => {
    const labels = { topic: message.target.topic, method: message.method, kind: message.kind };
    const started = performance.now();
    try {
      const result = await next(message);
      metrics.rpcSent.inc({ ...labels, outcome: 'ok' });
      return result;
    } catch (error) {
      metrics.rpcSent.inc({ ...labels, outcome: outcomeOf(error) });
      throw error;
    } finally {
      metrics.rpcSendSeconds.observe(labels, (performance.now() - started) / 1000);
    }
  };
}
