import { BasaltError } from '@basalt/errors';
import type { DataSource } from 'typeorm';

export class NoFreeTargetError extends BasaltError {}

/**
 * iSCSI target numbers (tgt's tid) per host. Allocation takes the lowest free number under a
 * per-host advisory lock, so concurrent creates never get the same one; asking again for the same
 * volume returns its number (a redelivered create is harmless).
 */
export class IscsiTargetRepository {
  constructor(private readonly ds: DataSource) {}

  async allocate(host: string, volumeId: string, maxTargets: number): Promise<number> {
    return this.ds.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`iscsi_targets:${host}`]);
      const existing = await tx.query('SELECT target_num FROM iscsi_targets WHERE volume_id = $1', [
        volumeId,
      ]);
      if (existing[0]) return Number(existing[0].target_num);
      const rows = await tx.query(
        `INSERT INTO iscsi_targets (host, target_num, volume_id)
         SELECT $1::varchar, n, $2::uuid FROM generate_series(1, $3::int) AS n
          WHERE NOT EXISTS (SELECT 1 FROM iscsi_targets t WHERE t.host = $1::varchar AND t.target_num = n)
          ORDER BY n LIMIT 1
         RETURNING target_num`,
        [host, volumeId, maxTargets],
      );
      if (!rows[0]) {
        throw new NoFreeTargetError(`no free iSCSI target number on ${host} (all ${maxTargets} in use)`, {
          retryable: true,
        });
      }
      return Number(rows[0].target_num);
    });
  }

  async find(volumeId: string): Promise<number | undefined> {
    const rows = await this.ds.query('SELECT target_num FROM iscsi_targets WHERE volume_id = $1', [volumeId]);
    return rows[0] ? Number(rows[0].target_num) : undefined;
  }

  async release(volumeId: string): Promise<void> {
    await this.ds.query('DELETE FROM iscsi_targets WHERE volume_id = $1', [volumeId]);
  }
}
