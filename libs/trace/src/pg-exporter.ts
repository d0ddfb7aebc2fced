import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
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

/** A finished span as its row of `trace_spans`, in the JSON the statement unpacks. */
function rowOf(span: ReadableSpan): string {
  const sc = span.spanContext();
  const resource = span.resource.attributes;
  const { [ATTR.requestId]: requestId, ...attributes } = span.attributes;
  return JSON.stringify({
    t: sc.traceId,
    s: sc.spanId,
    p: span.parentSpanContext?.spanId,
    r: typeof requestId === 'string' ? requestId : undefined,
    n: span.name,
    k: SPAN_KINDS[span.kind],
    h: resource['host.name'],
    pr: resource['service.name'],
    st: micros(span.startTime),
    d: micros(span.duration),
    ok: span.status.code === SpanStatusCode.ERROR ? 'error' : 'ok',
    m: span.status.message,
    a: attributes,
  });
}

/**
 * Writes finished spans into `trace_spans`, a batch per statement, off the hot path. Each span
 * becomes its row as it ends and the SDK's span object is let go: held until its batch is written,
 * every span would outlive the young generation, and the collector's copying of them costs the
 * process more than the span itself. The buffer holds at most `maxQueueSize` rows, waiting or
 * being written; what does not fit is dropped and counted (`basalt_trace_spans_dropped_total`).
 */
export class PostgresSpanProcessor implements SpanProcessor {
  private rows: string[] = [];
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
    this.rows.push(rowOf(span));
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

  private write(batch: readonly string[]): void {
    this.inFlight += batch.length;
    const written: Promise<void> = this.db.query(INSERT, [`[${batch.join(',')}]`]).then(
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
