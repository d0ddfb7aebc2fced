import type { RequestTraces, SpanNode, TraceSummary, TraceTree } from '@basalt/trace';
import { renderTable } from './table';

const ms = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`);

/** What a span ended as: `ok`, or `error: <why>`. */
const outcome = (span: SpanNode) => (span.status === 'error' ? `error: ${span.error}` : 'ok');

/** How long the message waited before its handler, when the span is a handled message. */
const queued = (span: SpanNode) => {
  const wait = span.attributes['messaging.basalt.queue_wait_ms'];
  return typeof wait === 'number' ? ` (queued ${ms(wait)})` : '';
};

/** Where a span ran: host and process (the root of a gateway's request id has no host). */
const where = (span: SpanNode, between: string) => [span.host, span.process].filter(Boolean).join(between);

function* walk(nodes: readonly SpanNode[], depth = 0): Generator<[SpanNode, number]> {
  for (const node of nodes) {
    yield [node, depth];
    yield* walk(node.children, depth + 1);
  }
}

/** Every span of each trace on its own line, children indented under their parent. */
export function renderTraceText(found: RequestTraces): string {
  return found.traces
    .map((tree) => {
      const lines = [...walk(tree.roots)].map(
        ([span, depth]) =>
          `${'  '.repeat(depth)}${span.name}  [${where(span, ' ')}]  ${ms(span.duration_ms)}${queued(span)}  ${outcome(span)}`,
      );
      return [
        `trace ${tree.trace_id} (${found.request_id}) at ${tree.started_at}, ${ms(tree.duration_ms)}`,
        ...lines,
      ].join('\n');
    })
    .join('\n\n');
}

/** `basalt trace --slowest`: the longest traces, longest first. */
export function renderSlowest(summaries: readonly TraceSummary[]): string {
  return renderTable(
    ['Request ID', 'Operation', 'Requests', 'Started At', 'Duration', 'Spans', 'Errors'],
    summaries.map((s) => [
      s.request_id ?? '-',
      s.name,
      String(Math.max(s.requests, 1)),
      s.started_at,
      ms(s.duration_ms),
      String(s.spans),
      String(s.errors),
    ]),
  );
}

const html = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

const STYLE = `
  body { font: 13px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.2em; } h2 { font-size: 1em; margin-top: 2em; }
  table { border-collapse: collapse; width: 100%; table-layout: fixed; }
  td { padding: 2px 6px; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  td.op { width: 32%; } td.where { width: 18%; color: #555; } td.dur { width: 8%; text-align: right; }
  td.bar { position: relative; }
  .span { position: absolute; top: 4px; height: 12px; min-width: 2px; background: #4a7bd0; border-radius: 2px; }
  .wait { position: absolute; top: 4px; height: 12px; background: repeating-linear-gradient(45deg, #ccc, #ccc 3px, #eee 3px, #eee 6px); }
  tr.error .span { background: #d0453a; } tr.error td.op { color: #b3261e; }
  .why { display: block; color: #b3261e; white-space: normal; font-size: 0.9em; }`;

function traceSection(found: RequestTraces, tree: TraceTree): string {
  const total = Math.max(tree.duration_ms, 0.001);
  const pct = (value: number) => `${((value / total) * 100).toFixed(3)}%`;
  const rows = [...walk(tree.roots)].map(([span, depth]) => {
    const wait = span.attributes['messaging.basalt.queue_wait_ms'];
    const waitBar =
      typeof wait === 'number' && wait > 0
        ? `<div class="wait" style="left:${pct(Math.max(span.offset_ms - wait, 0))};width:${pct(wait)}" title="queued ${html(ms(wait))}"></div>`
        : '';
    const why = span.status === 'error' ? `<span class="why">${html(span.error ?? 'failed')}</span>` : '';
    return `<tr class="${span.status}" data-span-id="${span.span_id}">
  <td class="op" style="padding-left:${6 + depth * 16}px" title="${html(span.name)}">${html(span.name)}${why}</td>
  <td class="where">${html(where(span, ' · '))}</td>
  <td class="dur">${html(ms(span.duration_ms))}</td>
  <td class="bar">${waitBar}<div class="span" style="left:${pct(span.offset_ms)};width:${pct(span.duration_ms)}" title="${html(`${span.name}: ${ms(span.duration_ms)} from +${ms(span.offset_ms)}`)}"></div></td>
</tr>`;
  });
  return `<h2>trace ${html(tree.trace_id)} · ${html(tree.started_at)} · ${html(ms(tree.duration_ms))}</h2>
<table class="trace" data-request-id="${html(found.request_id)}">
${rows.join('\n')}
</table>`;
}

/** A waterfall of each trace as one HTML page that needs nothing but itself: no scripts, no fetches. */
export function renderTraceHtml(found: RequestTraces): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Basalt trace ${html(found.request_id)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Request ${html(found.request_id)}</h1>
${found.traces.map((tree) => traceSection(found, tree)).join('\n')}
</body>
</html>
`;
}
