import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The spans every process records, for `GET /v3/{project_id}/traces/{request_id}` and `basalt
 * trace`: found by request id (every span of a request names it), listed and purged by age
 * (`[trace] retention`). Spans are written far more often than any state changes, so each row
 * costs as little as it can: unlogged (no WAL to write, nor to compete with the state tables'
 * own; the price is that a database crash empties the table and standbys do not have it), no
 * primary key (a batch written twice shows its spans once, as the reader keeps one row per span),
 * a BRIN index on the time (rows arrive in time order, the index costs almost nothing to keep).
 */
export class TraceSpans1764000000020 implements MigrationInterface {
  name = 'TraceSpans1764000000020';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE trace_spans (
        trace_id text NOT NULL,
        span_id text NOT NULL,
        parent_span_id text,
        request_id text,
        name text NOT NULL,
        kind text NOT NULL,
        host text NOT NULL,
        process text NOT NULL,
        started_at timestamptz NOT NULL,
        duration_us bigint NOT NULL CHECK (duration_us >= 0),
        status text NOT NULL CHECK (status IN ('ok', 'error')),
        status_message text,
        -- read back whole, never searched: json keeps the text as given, cheaper to write than jsonb
        attributes json NOT NULL DEFAULT '{}'
      )`);
    await q.query(
      'CREATE INDEX trace_spans_request_id ON trace_spans (request_id) WHERE request_id IS NOT NULL',
    );
    await q.query('CREATE INDEX trace_spans_started_at ON trace_spans USING brin (started_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE trace_spans');
  }
}
