import { adminContext, parseTraceparent } from '@basalt/context';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { recordSpans, type SpanRecorder } from './recorder';
import { contextOfRequest, traceparentOf, withLibvirtSpan, withSpan } from './spans';

let recorder: SpanRecorder;
beforeEach(() => {
  recorder = recordSpans();
});
afterEach(() => recorder.stop());

test("a libvirt operation is a client span under the active one, with its domain, failed with libvirt's error", async () => {
  const ctx = adminContext();
  await withSpan('compute.attach_volume', { parent: contextOfRequest(ctx) }, async () => {
    await withLibvirtSpan('attach-device', { 'libvirt.domain': 'instance-00000001' }, async () => undefined);
    await withLibvirtSpan('detach-device', { 'libvirt.domain': 'instance-00000001' }, async () => {
      throw new Error('Requested operation is not valid: domain is not running');
    }).catch(() => undefined);
  });
  const [attach, detach, handler] = recorder.spans();
  expect(attach).toMatchObject({ name: 'libvirt attach-device', kind: SpanKind.CLIENT });
  expect(attach?.attributes).toMatchObject({
    'libvirt.domain': 'instance-00000001',
    'basalt.request_id': ctx.requestId,
  });
  expect(attach?.parentSpanContext?.spanId).toBe(handler?.spanContext().spanId);
  expect(detach?.status).toEqual({
    code: SpanStatusCode.ERROR,
    message: 'Error: Requested operation is not valid: domain is not running',
  });
});

test("a request's traceparent is the remote parent; a span's traceparent names it", async () => {
  const ctx = adminContext();
  const sender = parseTraceparent(ctx.traceparent);
  await withSpan('handled', { parent: contextOfRequest(ctx) }, async (span) => {
    const mine = parseTraceparent(traceparentOf(span));
    expect(mine?.traceId).toBe(sender?.traceId);
    expect(mine?.spanId).toBe(span.spanContext().spanId);
    expect(mine?.spanId).not.toBe(sender?.spanId);
  });
  expect(recorder.spans()[0]?.parentSpanContext).toMatchObject({ spanId: sender?.spanId, isRemote: true });
});
