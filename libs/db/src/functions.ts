import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The database's functions; each one's current source is `sql/<name>.sql` in this package. */
export const SQL_FUNCTIONS = [
  'allocate_iscsi_target',
  'volume_backend_name',
  'check_volume_quota',
  'create_volume_within_quota',
  'volume_error_message',
  'quota_limit',
  'create_snapshot_within_quota',
  'quota_usage',
] as const;
export type SqlFunction = (typeof SQL_FUNCTIONS)[number];

/**
 * The `CREATE OR REPLACE FUNCTION` statement of `name` as the database should have it now. The
 * sql folder sits beside both src and dist, so this reads the same file from either.
 */
export function functionSource(name: SqlFunction): string {
  return readFileSync(join(__dirname, '..', 'sql', `${name}.sql`), 'utf8');
}
