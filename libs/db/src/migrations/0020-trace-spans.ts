import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The spans every process records, for `GET /v3/{project_id}/traces/{request_id}` and `basalt
 * trace`: found by request id, by trace, and purged by age (`[trace] retention`).
 */
export class TraceSpans1764000000020 implements MigrationInterface {
  name = 'TraceSpans1764000000020';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE trace_spans (
        trace_id char(32) NOT NULL,
        span_id char(16) NOT NULL,
        parent_span_id char(16),
        request_id varchar(255),
        name varchar(255) NOT NULL,
        kind varchar(16) NOT NULL,
        host varchar(255) NOT NULL,
        process varchar(64) NOT NULL,
        started_at timestamptz NOT NULL,
        duration_us bigint NOT NULL CHECK (duration_us >= 0),
        status varchar(8) NOT NULL CHECK (status IN ('ok', 'error')),
        status_message text,
        attributes jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (trace_id, span_id)
      )`);
    await q.query(
      'CREATE INDEX trace_spans_request_id ON trace_spans (request_id) WHERE request_id IS NOT NULL',
    );
    await q.query('CREATE INDEX trace_spans_started_at ON trace_spans (started_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE trace_spans');
  }
}
