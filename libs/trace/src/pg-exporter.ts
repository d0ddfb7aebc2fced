import {
  type Attributes,
  type HrTime,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api';
import type { BufferConfig, ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { metrics, outcomeOf } from './metrics';
import { ATTR } from './spans';

/** What the exporter and the store need of a database: a DataSource or a pg client will do. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export const SPAN_KINDS: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

/**
 * One statement for a whole batch: the rows as one JSON array, unpacked by PostgreSQL. One
 * parameter serializes and parses far cheaper than thirteen arrays of strings.
 */
const INSERT = `
  INSERT INTO trace_spans (trace_id, span_id, parent_span_id, request_id, name, kind, host, process,
                           started_at, duration_us, status, status_message, attributes)
  SELECT t, s, p, r, n, k, h, pr, to_timestamp(st / 1000000.0), d, ok, m, coalesce(a, '{}')
    FROM json_to_recordset($1::json)
      AS x(t text, s text, p text, r text, n text, k text, h text, pr text, st float8, d bigint,
           ok text, m text, a json)`;

const micros = ([seconds, nanos]: readonly [number, number]) => seconds * 1e6 + Math.floor(nanos / 1e3);

/**
 * What a finished span's row is made of: references to the span's own parts, taken as it ends so
 * that the SDK's span object itself is let go, and turned into JSON with the rest of its batch.
 */
interface FinishedSpan {
  readonly context: SpanContext;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: SpanKind;
  readonly resource: Attributes;
  readonly start: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
}

const finishedOf = (span: ReadableSpan): FinishedSpan => ({
  context: span.spanContext(),
  parentSpanId: span.parentSpanContext?.spanId,
  name: span.name,
  kind: span.kind,
  resource: span.resource.attributes,
  start: span.startTime,
  duration: span.duration,
  status: span.status,
  attributes: span.attributes,
});

/** A finished span as its row of `trace_spans`, in the JSON the statement unpacks. */
function rowOf(span: FinishedSpan) {
  const { [ATTR.requestId]: requestId, ...attributes } = span.attributes;
  return {
    t: span.context.traceId,
    s: span.context.spanId,
    p: span.parentSpanId,
    r: typeof requestId === 'string' ? requestId : undefined,
    n: span.name,
    k: SPAN_KINDS[span.kind],
    h: span.resource['host.name'],
    pr: span.resource['service.name'],
    st: micros(span.start),
    d: micros(span.duration),
    ok: span.status.code === SpanStatusCode.ERROR ? 'error' : 'ok',
    m: span.status.message,
    a: attributes,
  };
}

/**
 * Writes finished spans into `trace_spans`, a batch per statement, off the hot path. As a span ends
 * only the parts of it its row needs are kept and the SDK's span object is let go: held until its
 * batch is written, every span would outlive the young generation, and the collector's copying of
 * them costs the process more than the span itself. The rows become JSON with their batch, in one
 * loop, where serializing each as it ended ran cold between the messages' work. The buffer holds
 * at most `maxQueueSize` spans, waiting or being written; what does not fit is dropped and counted
 * (`basalt_trace_spans_dropped_total`).
 */
export class PostgresSpanProcessor implements SpanProcessor {
  private rows: FinishedSpan[] = [];
  /** Rows of the statements not answered yet: they count against the buffer until then. */
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly db: SqlClient,
    private readonly buffer: Required<
      Pick<BufferConfig, 'maxQueueSize' | 'maxExportBatchSize' | 'scheduledDelayMillis'>
    >,
    private readonly onError: (what: string, error: unknown) => void,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.rows.length + this.inFlight >= this.buffer.maxQueueSize) {
      metrics.spansDropped.inc({ exporter: 'postgresql' });
      return;
    }
    this.rows.push(finishedOf(span));
    if (this.rows.length >= this.buffer.maxExportBatchSize) this.writeAll();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.writeAll(), this.buffer.scheduledDelayMillis);
      this.timer.unref();
    }
  }

  async forceFlush(): Promise<void> {
    this.writeAll();
    await Promise.all(this.writing);
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }

  private writeAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.rows.length > 0) this.write(this.rows.splice(0, this.buffer.maxExportBatchSize));
  }

  private write(batch: readonly FinishedSpan[]): void {
    this.inFlight += batch.length;
    const written: Promise<void> = this.db.query(INSERT, [JSON.stringify(batch.map(rowOf))]).then(
      () => {
        metrics.spansExported.inc({ exporter: 'postgresql', outcome: 'ok' }, batch.length);
      },
      (error: unknown) => {
        metrics.spansExported.inc({ exporter: 'postgresql', outcome: outcomeOf(error) }, batch.length);
        this.onError(`exporting ${batch.length} spans to postgresql`, error);
      },
    );
    this.writing.add(written);
    void written.finally(() => {
      this.inFlight -= batch.length;
      this.writing.delete(written);
    });
  }
}
