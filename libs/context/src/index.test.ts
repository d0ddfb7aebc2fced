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
