import { adminContext, parseTraceparent, type RequestContext } from '@basalt/context';
import { createLogger } from '@basalt/log';
import { metrics, recordSpans, type SpanRecorder, SpanStatusCode, withSpan } from '@basalt/trace';
import { queueWaitMs, serverMetrics, serverTracing } from './observe';
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
