import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
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

/** One statement for a whole batch: each column an array, rows made by unnest. */
const INSERT = `
  INSERT INTO trace_spans (trace_id, span_id, parent_span_id, request_id, name, kind, host, process,
                           started_at, duration_us, status, status_message, attributes)
  SELECT t, s, p, r, n, k, h, pr, to_timestamp(st / 1000000.0), d, ok, m, a::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::float8[], $10::bigint[], $11::text[], $12::text[], $13::text[])
      AS x(t, s, p, r, n, k, h, pr, st, d, ok, m, a)
  ON CONFLICT DO NOTHING`;

const micros = ([seconds, nanos]: readonly [number, number]) => seconds * 1e6 + Math.floor(nanos / 1e3);

/**
 * Writes finished spans into `trace_spans`, a batch per statement. A batch exported twice (after
 * a timeout) is harmless: a span is its trace and span id.
 */
export class PostgresSpanExporter implements SpanExporter {
  constructor(private readonly db: SqlClient) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.write(spans).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (error: Error) => done({ code: ExportResultCode.FAILED, error }),
    );
  }

  async shutdown(): Promise<void> {}

  private async write(spans: readonly ReadableSpan[]): Promise<void> {
    const columns: unknown[][] = Array.from({ length: 13 }, () => []);
    for (const span of spans) {
      const sc = span.spanContext();
      const resource = span.resource.attributes;
      const { [ATTR.requestId]: requestId, ...attributes } = span.attributes;
      const values = [
        sc.traceId,
        sc.spanId,
        span.parentSpanContext?.spanId ?? null,
        typeof requestId === 'string' ? requestId : null,
        span.name,
        SPAN_KINDS[span.kind],
        String(resource['host.name'] ?? ''),
        String(resource['service.name'] ?? ''),
        micros(span.startTime),
        micros(span.duration),
        span.status.code === SpanStatusCode.ERROR ? 'error' : 'ok',
        span.status.message ?? null,
        JSON.stringify(attributes),
      ];
      for (let i = 0; i < values.length; i++) columns[i]?.push(values[i]);
    }
    await this.db.query(INSERT, columns);
  }
}
