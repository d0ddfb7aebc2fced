import { gatewayTraceparent, newRequestId, parseTraceparent, requestRootSpanId } from '@basalt/context';
import { createLogger } from '@basalt/log';
import {
  type RequestTraces,
  recordSpans,
  type SpanRecorder,
  SpanStatusCode,
  type TraceStore,
} from '@basalt/trace';
import { createHttpApp } from './http';
import { registerTraceRoutes } from './trace-routes';

const REQUEST_ID = 'req-8a3f9c0e-1d2b-4c5d-9e6f-7a8b9c0d1e2f';
const stored: RequestTraces = {
  request_id: REQUEST_ID,
  traces: [{ trace_id: 'a'.repeat(32), started_at: '2026-12-01T00:00:00.000Z', duration_ms: 3, roots: [] }],
};

/** Served on a loopback port: fastify's inject needs an ES module jest cannot load here. */
async function serve() {
  const http = createHttpApp(createLogger({ name: 'test', level: 'silent' }), 1 << 20);
  const traces = {
    forRequest: async (id: string) => (id === REQUEST_ID ? stored : { request_id: id, traces: [] }),
  } as unknown as TraceStore;
  // the test says who is admin with a header of its own
  registerTraceRoutes(http, {
    traces,
    context: (req) => ({ ...req.basalt, isAdmin: req.headers['x-test-admin'] === 'yes' }),
  });
  const address = await http.listen({ host: '127.0.0.1', port: 0 });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${address}${path}`, { headers });
    return { statusCode: res.status, headers: res.headers, json: await res.json() };
  };
  return { get, close: () => http.close() };
}

describe('GET /v3/{project_id}/traces/{request_id}', () => {
  let recorder: SpanRecorder;
  beforeEach(() => {
    recorder = recordSpans();
  });
  afterEach(() => recorder.stop());

  let api: Awaited<ReturnType<typeof serve>>;
  beforeEach(async () => {
    api = await serve();
  });
  afterEach(() => api.close());

  test('answers an admin with the stored trees', async () => {
    const res = await api.get(`/v3/p/traces/${REQUEST_ID}`, { 'x-test-admin': 'yes' });
    expect(res.statusCode).toBe(200);
    expect(res.json).toEqual(stored);
  });

  test('refuses a member, says so for an unknown or malformed request id', async () => {
    const member = await api.get(`/v3/p/traces/${REQUEST_ID}`);
    expect(member.statusCode).toBe(403);
    const unknown = await api.get('/v3/p/traces/req-unknown', { 'x-test-admin': 'yes' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json).toEqual({
      itemNotFound: { code: 404, message: 'No trace of request req-unknown was found.' },
    });
    const bad = await api.get('/v3/p/traces/%27%3B--', { 'x-test-admin': 'yes' });
    expect(bad.statusCode).toBe(400);
  });

  test("a request's span: its route, its answer, failed with the fault when refused; the gateway's id kept", async () => {
    const res = await api.get(`/v3/p/traces/${REQUEST_ID}`, {
      'x-openstack-request-id': REQUEST_ID,
      traceparent: `00-${'b'.repeat(32)}-${'c'.repeat(16)}-01`,
    });
    expect(res.headers.get('x-openstack-request-id')).toBe(REQUEST_ID);
    // the span ends once the answer is sent, a moment after the client has it
    for (let i = 0; i < 100 && recorder.spans().length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    const [span] = recorder.spans();
    expect(span?.name).toBe('GET /v3/:project_id/traces/:request_id');
    expect(span?.spanContext().traceId).toBe('b'.repeat(32));
    expect(span?.parentSpanContext?.spanId).toBe('c'.repeat(16));
    expect(span?.attributes).toMatchObject({
      'http.response.status_code': 403,
      'basalt.request_id': REQUEST_ID,
    });
    expect(span?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'HTTP 403: Policy does not allow this action to be performed.',
    });
  });

  test("requests with one gateway id and no traceparent are one trace under that id's root; Basalt's own ids start their own", async () => {
    const gateway = newRequestId();
    for (const headers of [
      { 'x-openstack-request-id': gateway },
      { 'x-openstack-request-id': gateway },
      {},
      {},
    ])
      await api.get(`/v3/p/traces/${REQUEST_ID}`, headers);
    for (let i = 0; i < 100 && recorder.spans().length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    const ids = recorder.spans().map((s) => [s.attributes['basalt.request_id'], s.spanContext().traceId]);
    const derived = parseTraceparent(gatewayTraceparent(gateway))?.traceId;
    expect(ids.filter(([id]) => id === gateway).map(([, trace]) => trace)).toEqual([derived, derived]);
    const own = ids.filter(([id]) => id !== gateway);
    expect(own).toHaveLength(2);
    expect(new Set([derived, ...own.map(([, trace]) => trace)]).size).toBe(3);
    for (const span of recorder.spans().filter((s) => s.attributes['basalt.request_id'] === gateway))
      expect(span.parentSpanContext?.spanId).toBe(requestRootSpanId(derived as string));
  });
});
