import {
  childContext,
  contextFromWire,
  contextToWire,
  formatTraceparent,
  gatewayTraceparent,
  isRequestId,
  newRequestId,
  newTraceparent,
  parseTraceparent,
  requestRootSpanId,
} from './index';

test('request ids are req-<uuid>', () => {
  expect(isRequestId(newRequestId())).toBe(true);
  expect(isRequestId('req-1; rm -rf /')).toBe(false);
});

test('traceparent: parse, format, and children stay in the same trace', () => {
  const root = newTraceparent();
  const ids = parseTraceparent(root)!;
  expect(formatTraceparent(ids)).toBe(root);
  const child = parseTraceparent(newTraceparent(root))!;
  expect(child.traceId).toBe(ids.traceId);
  expect(child.spanId).not.toBe(ids.spanId);
  expect(parseTraceparent('00-00000000000000000000000000000000-0000000000000001-01')).toBeUndefined();
  expect(parseTraceparent('garbage')).toBeUndefined();
});

test('context round-trips through oslo keys and accepts older peers', () => {
  const ctx = childContext({
    requestId: newRequestId(),
    projectId: 'p',
    userId: 'u',
    roles: ['admin'],
    isAdmin: true,
  });
  expect(contextFromWire(contextToWire(ctx))).toEqual({ ...ctx, globalRequestId: undefined });
  const legacy = contextFromWire({ tenant: 't', user: 'x', roles: ['member', 3], traceparent: 'bad' });
  expect(legacy).toMatchObject({ projectId: 't', userId: 'x', roles: ['member'], isAdmin: false });
  expect(legacy.traceparent).toBeUndefined();
  expect(isRequestId(legacy.requestId)).toBe(true);
});

test('trace and span ids stay valid and distinct across many pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const ids = parseTraceparent(newTraceparent());
    expect(ids).toBeDefined();
    seen.add(ids?.traceId as string);
    seen.add(ids?.spanId as string);
  }
  expect(seen.size).toBe(4000);
});

test('the time a message was sent comes back from the wire as sentAt; anything but a number is ignored', () => {
  expect(contextFromWire({ request_id: newRequestId(), sent_at: 1764000000123 }).sentAt).toBe(1764000000123);
  expect(contextFromWire({ request_id: newRequestId(), sent_at: '1764000000123' }).sentAt).toBeUndefined();
});

test("a gateway's request id always names the same trace and root, another id another one", () => {
  const id = newRequestId();
  const ids = parseTraceparent(gatewayTraceparent(id))!;
  expect(gatewayTraceparent(id)).toBe(gatewayTraceparent(id));
  expect(ids).toEqual({
    traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
    spanId: requestRootSpanId(ids.traceId),
    sampled: true,
  });
  expect(parseTraceparent(gatewayTraceparent(newRequestId()))?.traceId).not.toBe(ids.traceId);
});
