import type { DataSource } from 'typeorm';

/** Tables whose live rows are counted, each by its status column; a table not created yet is skipped. */
const STATUS_COLUMNS = { volumes: 'status', instances: 'vm_state' } as const;
export type CountedTable = keyof typeof STATUS_COLUMNS;

export interface StatusCount {
  readonly table: CountedTable;
  readonly status: string;
  readonly count: number;
}

/** Live volumes by status and instances by vm_state, in one statement per table. */
export async function countByStatus(ds: DataSource): Promise<StatusCount[]> {
  const present: Array<{ name: CountedTable }> = await ds.query(
    'SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL',
    [Object.keys(STATUS_COLUMNS)],
  );
  const counts: StatusCount[] = [];
  for (const { name } of present) {
    const rows: Array<{ status: string; n: number }> = await ds.query(
      `SELECT ${STATUS_COLUMNS[name]} AS status, count(*)::int AS n FROM ${name} WHERE NOT deleted GROUP BY 1`,
    );
    for (const row of rows) counts.push({ table: name, status: row.status, count: row.n });
  }
  return counts;
}

/** Seconds since each service's last heartbeat, by the database clock. */
export async function heartbeatAges(
  ds: DataSource,
): Promise<Array<{ host: string; binary: string; ageSec: number }>> {
  const rows: Array<{ host: string; binary: string; age: number }> = await ds.query(
    `SELECT host, "binary", extract(epoch FROM now() - last_heartbeat_at)::float8 AS age FROM services`,
  );
  return rows.map((r) => ({ host: r.host, binary: r.binary, ageSec: Number(r.age) }));
}
