import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SpanNode } from '@basalt/trace';
import { chromium } from 'playwright-core';
import { request, waitForVolume } from '../support/http';
import { otlpAttribute, otlpCollector, otlpSpans } from '../support/otlp';
import { ROOT, type ServiceName } from '../support/processes';
import { waitFor } from '../support/rpc';
import { descendants, expectNested, flatten } from '../support/span-tree';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);

type Span = SpanNode;

/** Prometheus' text format as `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** The sum of every series of `name` whose labels include all of `labels`. */
function sumOf(values: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [series, value] of values) {
    if (series !== name && !series.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

describe('one request followed through every process', () => {
  // every process also sends its spans to a collector of the test's own
  const extraEnv: Record<string, string> = {};
  const stack = new VolumeStack({ extraEnv });
  const token = 'tester:proj1';
  let api = '';
  let collector: Awaited<ReturnType<typeof otlpCollector>>;

  beforeAll(async () => {
    collector = await otlpCollector();
    extraEnv.BASALT__TRACE__OTLP_ENDPOINT = collector.url;
    await stack.start();
    api = `${stack.volumeUrl}/v3/proj1`;
  }, 60_000);
  afterAll(async () => {
    await stack.stop();
    await collector?.close();
  }, 60_000);

  const metricsUrl = (name: ServiceName) => {
    const url = /"metrics":"([^"]+)"/.exec(stack.service(name).log)?.[1];
    if (!url) throw new Error(`${name} did not say where its metrics are`);
    return url;
  };
  const scrape = async (name: ServiceName) => {
    const response = await fetch(metricsUrl(name));
    expect(response.status).toBe(200);
    return parseMetrics(await response.text());
  };

  const create = async (requestId: string, name: string) => {
    const created = await request(`${api}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1, name } },
      headers: { 'X-OpenStack-Request-ID': requestId },
    });
    expect(created.status).toBe(202);
    expect(created.headers.get('x-openstack-request-id')).toBe(requestId);
    return created.body.volume.id as string;
  };

  /** The request's trace once the spans `complete` wants have reached the database (they go in batches). */
  const traceOf = (requestId: string, complete: (spans: Span[]) => boolean) =>
    waitFor(
      async () => {
        const found = await request(`${api}/traces/${requestId}`, { token });
        if (found.status !== 200) return undefined;
        const spans = flatten(found.body.traces.flatMap((t: { roots: Span[] }) => t.roots));
        return complete(spans) ? found.body : undefined;
      },
      `the trace of ${requestId}`,
      20_000,
    );

  const requestId = `req-${randomUUID()}`;
  let volumeId = '';

  test('a create is one tree across api, scheduler and volume-worker, each step inside its parent', async () => {
    volumeId = await create(requestId, 'traced');
    await waitForVolume(api, token, volumeId, ['available']);
    // each process exports in its own batches: wait until the last step of each is in
    const found = await traceOf(requestId, (spans) =>
      [
        'POST /v3/:project_id/volumes',
        'scheduler.create_volume',
        `cast volume.${stack.host}.create_volume`,
        'volume finishCreate',
      ].every((name) => spans.some((s) => s.name === name)),
    );
    expect(found.request_id).toBe(requestId);
    expect(found.traces).toHaveLength(1);
    const [trace] = found.traces as Array<{ trace_id: string; roots: Span[] }>;
    // the gateway's id is the root, its one HTTP request under it
    const [top] = trace?.roots ?? [];
    expect(trace?.roots).toHaveLength(1);
    expect(top).toMatchObject({ name: requestId, kind: 'request', process: 'gateway', status: 'ok' });
    expect(top?.children).toHaveLength(1);
    const [root] = top?.children ?? [];
    expect(root).toMatchObject({ name: 'POST /v3/:project_id/volumes', process: 'basalt-api', status: 'ok' });
    expect(root?.request_id).toBe(requestId);

    // the messages: api casts to the scheduler, which casts to the volume host
    const child = (parent: Span | undefined, name: string) => {
      const found = parent?.children.find((c) => c.name === name);
      if (!found)
        throw new Error(
          `no ${name} under ${parent?.name}: ${JSON.stringify(parent?.children.map((c) => c.name))}`,
        );
      return found;
    };
    const toScheduler = child(root, 'cast scheduler.create_volume');
    const scheduling = child(toScheduler, 'scheduler.create_volume');
    expect(scheduling).toMatchObject({ process: 'basalt-scheduler', kind: 'consumer' });
    const toWorker = child(scheduling, `cast volume.${stack.host}.create_volume`);
    const creating = child(toWorker, 'volume.create_volume');
    expect(creating).toMatchObject({ process: 'basalt-volume', kind: 'consumer', status: 'ok' });
    for (const handled of [scheduling, creating]) {
      expect(handled.attributes['messaging.basalt.queue_wait_ms']).toEqual(expect.any(Number));
      expect(handled.attributes['messaging.basalt.queue_wait_ms'] as number).toBeGreaterThanOrEqual(0);
      expect(handled.request_id).toBe(requestId);
    }

    // the worker's export, request by request on tgtd's socket, inside its handler
    const tgtd = descendants(creating).filter((s) => s.name.startsWith('tgtd '));
    expect(tgtd.map((s) => s.name)).toEqual(['tgtd new target', 'tgtd new logicalunit']);
    for (const s of tgtd) expect(s).toMatchObject({ process: 'basalt-volume', status: 'ok' });

    // the status changes, each in the handler that made it
    const moves = (handler: Span) => descendants(handler).filter((s) => s.name.startsWith('volume '));
    expect(moves(scheduling).map((s) => s.name)).toContain('volume place');
    expect(moves(creating).map((s) => s.name)).toEqual(
      expect.arrayContaining(['volume claimCreate', 'volume finishCreate']),
    );

    // every span begins within its parent; all but a cast's consumer end within it too
    for (const r of trace?.roots ?? []) expectNested(r);
    expect(flatten(top?.children ?? []).every((s) => s.host === stack.host)).toBe(true);
  }, 60_000);

  test('the same spans reach the OTLP collector, from every process', async () => {
    const processes = await waitFor(
      () => {
        const ours = otlpSpans(collector.bodies).filter(
          (span) => otlpAttribute(span.attributes, 'basalt.request_id') === requestId,
        );
        const names = new Set(ours.map((span) => otlpAttribute(span.resource, 'service.name')));
        return names.size === 3 ? names : undefined;
      },
      'spans of the request from the three processes at the collector',
      20_000,
    );
    expect([...processes].sort()).toEqual(['basalt-api', 'basalt-scheduler', 'basalt-volume']);
  });

  test('every log line of the request, in every process, names its request and trace', async () => {
    const found = await traceOf(requestId, (spans) => spans.some((s) => s.name === 'volume finishCreate'));
    const traceId = found.traces[0].trace_id as string;
    for (const name of ['api', 'scheduler', 'volume-worker'] as const) {
      const lines = stack
        .service(name)
        .log.split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      // the handlers' lines about the volume, and every line naming the request
      const ours = lines.filter(
        (l) =>
          l.request_id === requestId ||
          (l.method === 'create_volume' && JSON.stringify(l).includes(volumeId)),
      );
      expect(ours.length).toBeGreaterThan(0);
      for (const line of ours) {
        expect(line).toMatchObject({ request_id: requestId, trace_id: traceId, span_id: expect.any(String) });
      }
    }
  });

  test('basalt trace prints the tree; --html writes a page Chromium shows; --slowest lists it', async () => {
    const env = { ...process.env, ...stack.env() };
    const cli = (...args: string[]) =>
      run(process.execPath, [join(ROOT, 'libs/cli/dist/main.js'), 'trace', ...args], { env });
    const text = (await cli(requestId)).stdout.split('\n');
    expect(text[0]).toMatch(new RegExp(`^trace [0-9a-f]{32} \\(${requestId}\\)`));
    expect(text[1]).toMatch(new RegExp(`^${requestId} {2}\\[gateway\\] {2}[\\d.]+ m?s {2}ok$`));
    expect(text[2]).toMatch(/^ {2}POST \/v3\/:project_id\/volumes {2}\[\S+ basalt-api\] {2}[\d.]+ ms {2}ok$/);
    const line = (name: string) => text.find((l) => l.trimStart().startsWith(`${name}  `)) ?? '';
    expect(line('volume.create_volume')).toMatch(
      new RegExp(
        `^ {10}volume\\.create_volume {2}\\[${stack.host} basalt-volume\\] {2}[\\d.]+ m?s \\(queued [\\d.]+ m?s\\) {2}ok$`,
      ),
    );
    expect(line('tgtd new target')).toMatch(/^ {12,}tgtd new target {2}\[\S+ basalt-volume\]/);

    const page = join(stack.dir, 'trace.html');
    await cli(requestId, '--html', page);
    const html = readFileSync(page, 'utf8');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const tab = await browser.newPage();
      const fetched: string[] = [];
      tab.on('request', (r) => {
        if (!r.url().startsWith('data:') && r.url() !== 'about:blank') fetched.push(r.url());
      });
      await tab.setContent(html);
      expect(await tab.locator('h1').textContent()).toBe(`Request ${requestId}`);
      const names = await tab.locator('td.op').allTextContents();
      expect(names.slice(0, 2)).toEqual([requestId, 'POST /v3/:project_id/volumes']);
      expect(names).toEqual(
        expect.arrayContaining(['scheduler.create_volume', 'volume.create_volume', 'tgtd new target']),
      );
      // the bars are laid out: the worker's handler starts right of the request's own bar
      const box = async (name: string) =>
        tab
          .locator('tr', {
            has: tab.locator('td.op', { hasText: new RegExp(`^${name.replace('.', '\\.')}$`) }),
          })
          .locator('.span')
          .first()
          .boundingBox();
      const [http, handler] = [await box('POST /v3/:project_id/volumes'), await box('volume.create_volume')];
      expect(http?.width).toBeGreaterThan(0);
      expect(handler?.x).toBeGreaterThan(http?.x ?? Infinity);
      expect(fetched).toEqual([]);
    } finally {
      await browser.close();
    }

    const slowest = (await cli('--slowest', '50', '--since', '1h')).stdout;
    expect(slowest).toContain(requestId);
    await expect(cli('--slowest', 'ten')).rejects.toMatchObject({ code: 2 });
    await expect(cli('req-unknown')).rejects.toMatchObject({
      stderr: expect.stringContaining('no trace of request req-unknown'),
    });
  }, 60_000);

  test('a create that fails shows in its tree where it failed and why', async () => {
    // the next volume's file is already a directory: the worker cannot create it
    const failing = `req-${randomUUID()}`;
    const [row] = (
      await run('psql', ['-At', stack.database.url, '-c', 'SELECT max(seq) + 1 FROM volumes'])
    ).stdout.split('\n');
    const blocker = join(stack.volumesPath, `volume-${Number(row).toString(16).padStart(8, '0')}`);
    mkdirSync(blocker);
    try {
      const id = await create(failing, 'doomed');
      await waitForVolume(api, token, id, ['error']);
      const found = await traceOf(failing, (spans) =>
        spans.some((s) => s.status === 'error' && s.process === 'basalt-volume'),
      );
      const spans = flatten(found.traces.flatMap((t: { roots: Span[] }) => t.roots));
      const failed = spans.filter((s) => s.status === 'error');
      expect(failed.map((s) => [s.process, s.name])).toContainEqual(['basalt-volume', 'volume failCreate']);
      const why = failed.find((s) => s.name === 'volume failCreate')?.error ?? '';
      expect(why).toMatch(/create failed: EISDIR/);
      // the handler that made the move is the one in the volume-worker
      const handler = spans.find((s) => s.name === 'volume.create_volume');
      expect(descendants(handler as Span).some((s) => s.name === 'volume failCreate')).toBe(true);
    } finally {
      rmSync(blocker, { recursive: true, force: true });
    }
  }, 60_000);

  test('/metrics of every process moves with the traffic', async () => {
    const before = {
      api: await scrape('api'),
      scheduler: await scrape('scheduler'),
      worker: await scrape('volume-worker'),
    };
    const id = await create(`req-${randomUUID()}`, 'counted');
    await waitForVolume(api, token, id, ['available']);
    const after = {
      api: await scrape('api'),
      scheduler: await scrape('scheduler'),
      worker: await scrape('volume-worker'),
    };
    const moved = (side: keyof typeof before, name: string, labels: Record<string, string>) =>
      sumOf(after[side], name, labels) - sumOf(before[side], name, labels);
    expect(
      moved('api', 'basalt_rpc_sent_total', { topic: 'scheduler', method: 'create_volume', outcome: 'ok' }),
    ).toBe(1);
    expect(
      moved('scheduler', 'basalt_rpc_handled_total', {
        topic: 'scheduler',
        method: 'create_volume',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(moved('scheduler', 'basalt_rpc_queue_wait_seconds_count', { method: 'create_volume' })).toBe(1);
    expect(
      moved('worker', 'basalt_rpc_handled_total', {
        topic: 'volume',
        method: 'create_volume',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      moved('worker', 'basalt_rpc_handler_seconds_count', { topic: 'volume', method: 'create_volume' }),
    ).toBe(1);
    // the deployment's gauges come from the scheduler, read from the database when scraped
    expect(
      sumOf(after.scheduler, 'basalt_resources_by_status', { resource: 'volumes', status: 'available' }),
    ).toBe(
      sumOf(before.scheduler, 'basalt_resources_by_status', { resource: 'volumes', status: 'available' }) + 1,
    );
    const age = sumOf(after.scheduler, 'basalt_service_heartbeat_age_seconds', {
      host: stack.host,
      binary: 'basalt-volume',
    });
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(5);
    expect(after.worker.get('basalt_trace_spans_dropped_total{exporter="postgresql"}')).toBe(0);
    expect(
      sumOf(after.worker, 'basalt_trace_spans_exported_total', { exporter: 'postgresql', outcome: 'ok' }),
    ).toBeGreaterThan(0);
  }, 60_000);
});
