import { buildTrees } from '@basalt/trace';
import { renderTraceHtml, renderTraceText } from './trace-view';

const row = (
  span: string,
  parent: string | null,
  name: string,
  startUs: number,
  durationUs: number,
  extra = {},
) => ({
  trace_id: 'a'.repeat(32),
  span_id: span.padStart(16, '0'),
  parent_span_id: parent === null ? null : parent.padStart(16, '0'),
  request_id: 'req-1',
  name,
  kind: 'internal',
  host: 'host-a',
  process: 'basalt-volume',
  started_at: new Date(startUs / 1000),
  start_us: String(startUs),
  duration_us: String(durationUs),
  status: 'ok' as const,
  status_message: null,
  attributes: {},
  ...extra,
});

const T0 = 1_764_000_000_000_000;
const found = {
  request_id: 'req-1',
  traces: buildTrees([
    row('1', null, 'POST /v3/:project_id/volumes', T0, 8_000),
    row('3', '2', 'exec truncate', T0 + 12_000, 2_000, {
      status: 'error',
      status_message: 'exited with 1: <no space>',
    }),
    row('2', '1', 'volume.create_volume', T0 + 10_000, 20_000, {
      attributes: { 'messaging.basalt.queue_wait_ms': 1.5 },
    }),
  ]),
};

test('spans become a tree under their parents, offsets from the trace start', () => {
  const [tree] = found.traces;
  expect(tree?.duration_ms).toBe(30);
  const root = tree?.roots[0];
  expect(root?.name).toBe('POST /v3/:project_id/volumes');
  expect(root?.children[0]?.name).toBe('volume.create_volume');
  expect(root?.children[0]?.children[0]).toMatchObject({
    name: 'exec truncate',
    offset_ms: 12,
    duration_ms: 2,
  });
});

test('the text tree indents children and names host, process, duration and outcome', () => {
  expect(renderTraceText(found).split('\n').slice(1)).toEqual([
    'POST /v3/:project_id/volumes  [host-a basalt-volume]  8.0 ms  ok',
    '  volume.create_volume  [host-a basalt-volume]  20.0 ms (queued 1.5 ms)  ok',
    '    exec truncate  [host-a basalt-volume]  2.0 ms  error: exited with 1: <no space>',
  ]);
});

test('the waterfall page escapes what spans say and fetches nothing', () => {
  const html = renderTraceHtml(found);
  expect(html).toContain('exited with 1: &lt;no space&gt;');
  expect(html).not.toMatch(/<script|src=|href=|url\(/);
  expect(html).toContain('left:40.000%;width:6.667%');
});

test("the HTTP requests of a gateway's request id hang under one root for that id", () => {
  const root = 'a'.repeat(16);
  const joined = {
    request_id: 'req-1',
    // rows come from the store in no particular order
    traces: buildTrees([
      row('3', root, 'POST /v2.1/servers/:server_id/os-volume_attachments', T0 + 40_000, 10_000, {
        kind: 'server',
        process: 'basalt-api',
        status: 'error',
        status_message: 'HTTP 409',
      }),
      row('1', root, 'POST /v3/:project_id/volumes', T0, 8_000, { kind: 'server', process: 'basalt-api' }),
      row('2', '1', 'volume.create_volume', T0 + 4_000, 20_000),
    ]),
  };
  expect(joined.traces).toHaveLength(1);
  expect(joined.traces[0]?.roots.map((r) => [r.name, r.kind, r.span_id, r.children.length])).toEqual([
    ['req-1', 'request', root, 2],
  ]);
  expect(renderTraceText(joined).split('\n').slice(1)).toEqual([
    'req-1  [gateway]  50.0 ms  error: POST /v2.1/servers/:server_id/os-volume_attachments: HTTP 409',
    '  POST /v3/:project_id/volumes  [host-a basalt-api]  8.0 ms  ok',
    '    volume.create_volume  [host-a basalt-volume]  20.0 ms  ok',
    '  POST /v2.1/servers/:server_id/os-volume_attachments  [host-a basalt-api]  10.0 ms  error: HTTP 409',
  ]);
  expect(renderTraceHtml(joined)).toContain('<td class="where">gateway</td>');
});
