import {
  childContext,
  contextFromWire,
  contextToWire,
  formatTraceparent,
  isRequestId,
  newRequestId,
  newTraceparent,
  parseTraceparent,
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
