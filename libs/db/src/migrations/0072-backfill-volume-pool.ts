import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Volumes placed before 0042 have a host but no pool, so the API showed a bare host as
 * `os-vol-host-attr:host`. A host has one pool (`backend#pool`), recorded on every volume placed
 * there since 0042: each older row takes the pool of its host's most recently placed volume. A
 * host with no such volume has no known pool and keeps the bare host.
 */
export class BackfillVolumePool1764000000072 implements MigrationInterface {
  name = 'BackfillVolumePool1764000000072';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      UPDATE volumes v SET pool = known.pool
        FROM (SELECT DISTINCT ON (host) host, pool FROM volumes
               WHERE host IS NOT NULL AND pool IS NOT NULL
               ORDER BY host, scheduled_at DESC NULLS LAST, created_at DESC) known
       WHERE v.host = known.host AND v.pool IS NULL`);
  }

  async down(): Promise<void> {
    // which rows were backfilled is not recorded, and the pool is right for them either way
  }
}
