import { adminContext } from '@basalt/context';
import { createDataSource, type DataSource } from '@basalt/db';
import {
  contextOfRequest,
  registry,
  SpanKind,
  startSpan,
  startTracing,
  TraceStore,
  type Tracing,
  withSpan,
} from '@basalt/trace';
import { createTestDatabase } from '../support/db';
import { otlpCollector, otlpSpans } from '../support/otlp';
import { waitFor } from '../support/rpc';

const droppedSpans = async () => {
  const metric = await registry.getSingleMetric('basalt_trace_spans_dropped_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
};

describe('spans leave the process in batches, for PostgreSQL and an OTLP collector', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  let collector: Awaited<ReturnType<typeof otlpCollector>>;
  let tracing: Tracing | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    ds = createDataSource({ url: database.url, poolSize: 2 });
    await ds.initialize();
    collector = await otlpCollector();
  }, 30_000);
  afterEach(async () => {
    await tracing?.shutdown();
    tracing = undefined;
  });
  afterAll(async () => {
    await collector.close();
    await ds.destroy();
    await database.drop();
  });

  test("a request's spans are stored as one tree, and the collector gets the same ones", async () => {
    tracing = startTracing({
      serviceName: 'basalt-test',
      host: 'host-a',
      db: ds,
      otlpEndpoint: collector.url,
    });
    const ctx = adminContext();
    await withSpan('handle', { kind: SpanKind.CONSUMER, parent: contextOfRequest(ctx) }, async () => {
      await withSpan('step one', {}, async () => new Promise((r) => setTimeout(r, 5)));
      await withSpan('step two', {}, async () => {
        throw new Error('disk on fire');
      }).catch(() => undefined);
    });
    await tracing.flush();

    const found = await new TraceStore(ds).forRequest(ctx.requestId);
    expect(found.traces).toHaveLength(1);
    const [tree] = found.traces;
    const root = tree?.roots[0];
    expect(tree?.roots).toHaveLength(1);
    expect(root).toMatchObject({ name: 'handle', kind: 'consumer', host: 'host-a', process: 'basalt-test' });
    // the context's traceparent is the remote parent: same trace, its span as the parent
    expect(tree?.trace_id).toBe(ctx.traceparent?.split('-')[1]);
    expect(root?.parent_span_id).toBe(ctx.traceparent?.split('-')[2]);
    expect(root?.children.map((c) => [c.name, c.status, c.error])).toEqual([
      ['step one', 'ok', null],
      ['step two', 'error', 'Error: disk on fire'],
    ]);
    const [one] = root?.children ?? [];
    expect(one?.duration_ms).toBeGreaterThanOrEqual(4);
    expect(one?.offset_ms).toBeGreaterThanOrEqual(root?.offset_ms ?? Infinity);
    expect((one?.offset_ms ?? 0) + (one?.duration_ms ?? 0)).toBeLessThanOrEqual(
      (root?.offset_ms ?? 0) + (root?.duration_ms ?? 0),
    );

    await waitFor(() => collector.bodies.length > 0, 'the collector to receive spans');
    const spans = otlpSpans(collector.bodies);
    expect(spans.map((s: any) => s.name).sort()).toEqual(['handle', 'step one', 'step two']);
    const resource = collector.bodies[0].resourceSpans[0].resource.attributes;
    expect(resource).toEqual(
      expect.arrayContaining([
        { key: 'service.name', value: { stringValue: 'basalt-test' } },
        { key: 'host.name', value: { stringValue: 'host-a' } },
      ]),
    );
    const requestIds = spans.map(
      (s: any) => s.attributes.find((a: any) => a.key === 'basalt.request_id')?.value.stringValue,
    );
    expect(requestIds).toEqual([ctx.requestId, ctx.requestId, ctx.requestId]);
  }, 30_000);

  test('a full buffer drops spans and counts them; the rest are still exported', async () => {
    tracing = startTracing({
      serviceName: 'basalt-test',
      host: 'host-a',
      db: ds,
      buffer: { maxQueueSize: 4, maxExportBatchSize: 4, scheduledDelayMillis: 60_000 },
    });
    const before = await droppedSpans();
    const ctx = adminContext();
    // ten spans at once into a buffer of four, while the first batch is being written
    for (let i = 0; i < 10; i++) startSpan(`span ${i}`, { parent: contextOfRequest(ctx) }).end();
    const dropped = (await droppedSpans()) - before;
    expect(dropped).toBeGreaterThan(0);
    await tracing.flush();
    const [row] = await ds.query('SELECT count(*)::int AS n FROM trace_spans WHERE request_id = $1', [
      ctx.requestId,
    ]);
    expect(row.n + dropped).toBe(10);
  });

  test('spans older than the retention are purged', async () => {
    tracing = startTracing({ serviceName: 'basalt-test', host: 'host-a', db: ds });
    const ctx = adminContext();
    const parent = contextOfRequest(ctx);
    const old = startSpan('old', { parent });
    old.end();
    const fresh = startSpan('fresh', { parent });
    fresh.end();
    await tracing.flush();
    await ds.query("UPDATE trace_spans SET started_at = now() - interval '2 hours' WHERE name = 'old'");
    const purged = await new TraceStore(ds).purge(3600);
    expect(purged).toBeGreaterThanOrEqual(1);
    const names = (await ds.query('SELECT name FROM trace_spans WHERE request_id = $1', [ctx.requestId])).map(
      (r: { name: string }) => r.name,
    );
    expect(names).toEqual(['fresh']);
  });
});
