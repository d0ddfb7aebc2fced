import { requestRootSpanId } from '@basalt/context';
import type { SqlClient } from './pg-exporter';

/** One stored span, as the reading side shows it. */
export interface SpanNode {
  readonly span_id: string;
  readonly parent_span_id: string | null;
  /** The request the span was part of, when it knew (spans of a process's own periodic work may not). */
  readonly request_id: string | null;
  readonly name: string;
  readonly kind: string;
  readonly host: string;
  readonly process: string;
  readonly started_at: string;
  /** From the start of the span's trace, in milliseconds. */
  readonly offset_ms: number;
  readonly duration_ms: number;
  readonly status: 'ok' | 'error';
  /** Why it failed, when it did. */
  readonly error: string | null;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly children: SpanNode[];
}

export interface TraceTree {
  readonly trace_id: string;
  readonly started_at: string;
  readonly duration_ms: number;
  /**
   * Spans whose parent is not stored (the first of the trace, or one sent from outside); the
   * HTTP requests that joined a gateway request id's trace under one root standing for that id
   * (`kind` `request`, not a recorded span).
   */
  readonly roots: SpanNode[];
}

/** Everything one request id did: a trace per API request that carried it. */
export interface RequestTraces {
  readonly request_id: string;
  readonly traces: TraceTree[];
}

/** A trace worth looking at, as `basalt trace --slowest` lists them. */
export interface TraceSummary {
  readonly trace_id: string;
  readonly request_id: string | null;
  /** The first span's name: the HTTP request or the message that started it all. */
  readonly name: string;
  readonly started_at: string;
  /** From the first span's start to the last span's end. */
  readonly duration_ms: number;
  readonly spans: number;
  readonly errors: number;
  /** The HTTP requests a gateway's request id joined in this trace (0: the trace is one request's own). */
  readonly requests: number;
}

interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  request_id: string | null;
  name: string;
  kind: string;
  host: string;
  process: string;
  started_at: Date;
  start_us: string;
  duration_us: string;
  status: 'ok' | 'error';
  status_message: string | null;
  attributes: Record<string, unknown>;
}

const SPAN_COLUMNS = `trace_id, span_id, parent_span_id, request_id, name, kind, host, process, started_at,
  (extract(epoch FROM started_at) * 1000000)::bigint AS start_us, duration_us, status, status_message, attributes`;

/** The stored spans: read back as trees, listed by duration, purged past their retention. */
export class TraceStore {
  constructor(private readonly db: SqlClient) {}

  /** The spans of `requestId`, each trace of them as a tree (none: an empty list). */
  async forRequest(requestId: string): Promise<RequestTraces> {
    const rows = (await this.db.query(
      `SELECT DISTINCT ON (trace_id, span_id) ${SPAN_COLUMNS} FROM trace_spans
        WHERE request_id = $1 ORDER BY trace_id, span_id`,
      [requestId],
    )) as SpanRow[];
    return { request_id: requestId, traces: buildTrees(rows) };
  }

  /** The `limit` longest traces that began in the last `sinceSec` seconds. */
  async slowest(limit: number, sinceSec: number): Promise<TraceSummary[]> {
    const rows = (await this.db.query(
      `SELECT trace_id, (array_agg(request_id ORDER BY started_at) FILTER (WHERE request_id IS NOT NULL))[1] AS request_id,
              (array_agg(name ORDER BY started_at))[1] AS name, min(started_at) AS started_at,
              extract(epoch FROM max(started_at + make_interval(secs => duration_us / 1000000.0)) - min(started_at)) * 1000 AS duration_ms,
              count(*)::int AS spans, count(*) FILTER (WHERE status = 'error')::int AS errors,
              count(*) FILTER (WHERE parent_span_id = left(trace_id, 16))::int AS requests
         FROM trace_spans WHERE started_at >= now() - make_interval(secs => $2)
        GROUP BY trace_id ORDER BY duration_ms DESC LIMIT $1`,
      [limit, sinceSec],
    )) as Array<Omit<TraceSummary, 'started_at' | 'duration_ms'> & { started_at: Date; duration_ms: string }>;
    return rows.map((r) => ({
      ...r,
      started_at: new Date(r.started_at).toISOString(),
      duration_ms: Number(r.duration_ms),
    }));
  }

  /** Deletes the spans older than `retentionSec`; answers how many went. */
  async purge(retentionSec: number): Promise<number> {
    const result = (await this.db.query(
      'DELETE FROM trace_spans WHERE started_at < now() - make_interval(secs => $1)',
      [retentionSec],
    )) as [unknown, number] | { rowCount?: number };
    return Array.isArray(result) ? Number(result[1] ?? 0) : Number(result.rowCount ?? 0);
  }
}

/**
 * The root a gateway's request id stands for, over the HTTP requests that carried it: from the
 * first one's start to the trace's end, failed when one of them failed.
 */
function requestRoot(spanId: string, requests: SpanNode[], durationMs: number): SpanNode {
  const first = requests.reduce((a, b) => (b.offset_ms < a.offset_ms ? b : a));
  const failed = requests.find((r) => r.status === 'error');
  return {
    span_id: spanId,
    parent_span_id: null,
    request_id: first.request_id,
    name: first.request_id ?? spanId,
    kind: 'request',
    host: '',
    process: 'gateway',
    started_at: first.started_at,
    offset_ms: first.offset_ms,
    duration_ms: durationMs - first.offset_ms,
    status: failed ? 'error' : 'ok',
    error: failed ? `${failed.name}: ${failed.error}` : null,
    attributes: {},
    children: requests,
  };
}

/** Rows of one or more traces as trees: children under their parents, in the order they began. */
export function buildTrees(rows: readonly SpanRow[]): TraceTree[] {
  const byTrace = new Map<string, SpanRow[]>();
  for (const row of rows) {
    const list = byTrace.get(row.trace_id) ?? [];
    list.push(row);
    byTrace.set(row.trace_id, list);
  }
  const trees: TraceTree[] = [];
  for (const [traceId, spans] of byTrace) {
    const starts = spans.map((s) => Number(s.start_us));
    const origin = Math.min(...starts);
    const end = Math.max(...spans.map((s) => Number(s.start_us) + Number(s.duration_us)));
    const nodes = new Map<string, SpanNode>();
    for (const s of spans) {
      nodes.set(s.span_id, {
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        request_id: s.request_id,
        name: s.name,
        kind: s.kind,
        host: s.host,
        process: s.process,
        started_at: new Date(s.started_at).toISOString(),
        offset_ms: (Number(s.start_us) - origin) / 1000,
        duration_ms: Number(s.duration_us) / 1000,
        status: s.status,
        error: s.status === 'error' ? (s.status_message ?? 'failed') : null,
        attributes: s.attributes ?? {},
        children: [],
      });
    }
    const roots: SpanNode[] = [];
    const requests: SpanNode[] = [];
    const rootId = requestRootSpanId(traceId);
    for (const node of nodes.values()) {
      const parent = node.parent_span_id ? nodes.get(node.parent_span_id) : undefined;
      (parent ? parent.children : node.parent_span_id === rootId ? requests : roots).push(node);
    }
    const byStart = (a: SpanNode, b: SpanNode) => a.offset_ms - b.offset_ms;
    // the request root is made here, not stored: its children are put in order with it
    if (requests.length > 0) roots.push(requestRoot(rootId, requests.sort(byStart), (end - origin) / 1000));
    for (const node of nodes.values()) node.children.sort(byStart);
    roots.sort(byStart);
    trees.push({
      trace_id: traceId,
      started_at: new Date(origin / 1000).toISOString(),
      duration_ms: (end - origin) / 1000,
      roots,
    });
  }
  return trees.sort((a, b) => a.started_at.localeCompare(b.started_at));
}
