import { adminContext, childContext, parseTraceparent, type RequestContext } from '@basalt/context';
import { createLogger } from '@basalt/log';
import {
  contextOfRequest,
  metrics,
  recordSpans,
  type SpanRecorder,
  SpanStatusCode,
  traceparentOf,
  withSpan,
} from '@basalt/trace';
import type { OutgoingMessage, Send } from './client';
import { clientMetrics, clientTracing, queueWaitMs, serverMetrics, serverTracing } from './observe';
import type { Handler, Invocation } from './server';

const log = createLogger({ name: 'test', level: 'silent' });
const invocation = (context: RequestContext, kind: 'call' | 'cast' = 'cast'): Invocation => ({
  method: 'create_volume',
  args: {},
  context,
  log,
  kind,
  version: '1.0',
});

describe('serverTracing', () => {
  let recorder: SpanRecorder;
  beforeEach(() => {
    recorder = recordSpans();
  });
  afterEach(() => recorder.stop());

  test("a handled message is a span under the sender's, with its queue wait; the handler runs in it", async () => {
    const ctx = { ...adminContext(), sentAt: Date.now() - 40 };
    let seen: RequestContext | undefined;
    const handler: Handler = (inv) => {
      seen = inv.context;
      return withSpan('inner step', {}, async () => 'done');
    };
    await expect(serverTracing('volume', log)(handler)(invocation(ctx))).resolves.toBe('done');
    const [inner, handled] = recorder.spans();
    const sender = parseTraceparent(ctx.traceparent);
    expect(handled?.name).toBe('volume.create_volume');
    expect(handled?.spanContext().traceId).toBe(sender?.traceId);
    expect(handled?.parentSpanContext?.spanId).toBe(sender?.spanId);
    expect(handled?.attributes['messaging.basalt.queue_wait_ms']).toBeGreaterThanOrEqual(40);
    expect(handled?.attributes['basalt.request_id']).toBe(ctx.requestId);
    expect(inner?.parentSpanContext?.spanId).toBe(handled?.spanContext().spanId);
    // what the handler sends on names its span
    expect(parseTraceparent(seen?.traceparent)?.spanId).toBe(handled?.spanContext().spanId);
    expect(seen?.requestId).toBe(ctx.requestId);
  });

  test('a handler that throws leaves a failed span saying why', async () => {
    const failing: Handler = async () => {
      throw new TypeError('no such volume');
    };
    await expect(serverTracing('volume', log)(failing)(invocation(adminContext(), 'call'))).rejects.toThrow();
    const [span] = recorder.spans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError: no such volume' });
  });
});

describe('serverMetrics', () => {
  const value = async (name: keyof typeof metrics, labels: Record<string, string>) =>
    (await metrics[name].get()).values
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((sum, v) => sum + v.value, 0);

  test('counts messages by outcome and times handlers and queue waits', async () => {
    const topic = `t${Math.random().toString(16).slice(2)}`;
    const ok: Handler = async () => null;
    const bad: Handler = async () => {
      throw new RangeError('nope');
    };
    await serverMetrics(topic)(ok)(invocation({ ...adminContext(), sentAt: Date.now() - 5 }));
    await serverMetrics(topic)(bad)(invocation(adminContext())).catch(() => undefined);
    expect(await value('rpcHandled', { topic, outcome: 'ok' })).toBe(1);
    expect(await value('rpcHandled', { topic, outcome: 'RangeError' })).toBe(1);
    const counts = async (name: 'rpcHandlerSeconds' | 'rpcQueueWaitSeconds') =>
      (await metrics[name].get()).values.find(
        (v) => v.labels.topic === topic && v.metricName?.endsWith('_count'),
      )?.value;
    expect(await counts('rpcHandlerSeconds')).toBe(2);
    // only the message that said when it was sent has a queue wait
    expect(await counts('rpcQueueWaitSeconds')).toBe(1);
  });
});

test('queue wait: now less the send time, never negative (clocks of two hosts may disagree)', () => {
  expect(queueWaitMs({ ...adminContext(), sentAt: 1000 }, 1250)).toBe(250);
  expect(queueWaitMs({ ...adminContext(), sentAt: 2000 }, 1250)).toBe(0);
  expect(queueWaitMs(adminContext())).toBeUndefined();
});

describe('clientTracing', () => {
  let recorder: SpanRecorder;
  beforeEach(() => {
    recorder = recordSpans();
  });
  afterEach(() => recorder.stop());

  const outgoing = (ctx: RequestContext, kind: 'call' | 'cast' = 'cast'): OutgoingMessage => ({
    kind,
    context: childContext(ctx),
    target: { topic: 'volume', server: 'host1' },
    method: 'create_volume',
    args: {},
    options: {},
  });

  test("a message sent from a handler is a span under the handler's, and the message names it", async () => {
    const ctx = adminContext();
    let sent: OutgoingMessage | undefined;
    const publish: Send = async (message) => {
      sent = message;
    };
    await withSpan('handler', { parent: contextOfRequest(ctx) }, async (handler) => {
      // what a handler sends carries its context in the handler's span
      const inHandler = { ...ctx, traceparent: traceparentOf(handler) };
      await clientTracing()(publish)(outgoing(inHandler));
    });
    const [send, handler] = recorder.spans();
    expect(send?.name).toBe('cast volume.host1.create_volume');
    expect(send?.parentSpanContext?.spanId).toBe(handler?.spanContext().spanId);
    expect(parseTraceparent(sent?.context.traceparent)?.spanId).toBe(send?.spanContext().spanId);
    expect(send?.attributes['basalt.request_id']).toBe(ctx.requestId);
  });

  test("a message of another request than the caller's goes into that request's trace", async () => {
    const [mine, theirs] = [adminContext(), adminContext()];
    await withSpan('handler', { parent: contextOfRequest(mine) }, () =>
      clientTracing()(async () => undefined)(outgoing(theirs)),
    );
    const [send] = recorder.spans();
    expect(send?.spanContext().traceId).toBe(parseTraceparent(theirs.traceparent)?.traceId);
    expect(send?.attributes['basalt.request_id']).toBe(theirs.requestId);
  });

  test('a call that fails is a failed span', async () => {
    const failing: Send = async () => {
      throw new RangeError('no reply in 10 ms');
    };
    await expect(clientTracing()(failing)(outgoing(adminContext(), 'call'))).rejects.toThrow();
    expect(recorder.spans()[0]?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'RangeError: no reply in 10 ms',
    });
  });
});

test('clientMetrics counts messages sent by topic, method and outcome', async () => {
  const topic = `t${Math.random().toString(16).slice(2)}`;
  const message: OutgoingMessage = {
    kind: 'cast',
    context: adminContext(),
    target: { topic },
    method: 'm',
    args: {},
    options: {},
  };
  await clientMetrics()(async () => undefined)(message);
  await clientMetrics()(async () => {
    throw new RangeError('x');
  })(message).catch(() => undefined);
  const values = (await metrics.rpcSent.get()).values.filter((v) => v.labels.topic === topic);
  expect(values.map((v) => [v.labels.outcome, v.value]).sort()).toEqual([
    ['RangeError', 1],
    ['ok', 1],
  ]);
});
