import { BasaltError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { Params } from './sql';

export class NoFreeTargetError extends BasaltError {}

/** Every number up to maxTargets is taken; worth retrying, as deletes free numbers. */
export function noFreeTarget(host: string, maxTargets: number): NoFreeTargetError {
  return new NoFreeTargetError(`no free iSCSI target number on ${host} (all ${maxTargets} in use)`, {
    retryable: true,
  });
}

/**
 * iSCSI target numbers (tgt's tid) per host. Allocation (a database function) takes the lowest
 * free number under a per-host advisory lock, so concurrent creates never get the same one;
 * asking again for the same volume returns its number (a redelivered create is harmless).
 */
export class IscsiTargetRepository {
  constructor(private readonly ds: DataSource) {}

  async allocate(host: string, volumeId: string, maxTargets: number): Promise<number> {
    const p = new Params();
    const [row] = await this.ds.query(
      `SELECT ${allocateTarget(p.add(host), p.add(volumeId), p.add(maxTargets))} AS target_num`,
      p.values,
    );
    if (row?.target_num === null || row?.target_num === undefined) throw noFreeTarget(host, maxTargets);
    return Number(row.target_num);
  }

  /** Every target number the host has handed out, by volume id. */
  async ofHost(host: string): Promise<Map<string, number>> {
    const rows: { volume_id: string; target_num: number }[] = await this.ds.query(
      'SELECT volume_id, target_num FROM iscsi_targets WHERE host = $1',
      [host],
    );
    return new Map(rows.map((r) => [r.volume_id, Number(r.target_num)]));
  }
}

/**
 * The part of a statement that frees the target numbers of the volumes `volumeIds` (a query of
 * their ids) names: a volume's delete frees its number in the statement that marks it deleted.
 */
export function freeTargetsOf(volumeIds: string): string {
  return `DELETE FROM iscsi_targets WHERE volume_id IN (${volumeIds})`;
}

/**
 * The expression that allocates the volume's target number on the host (its own again if it has
 * one; NULL when all are taken): a volume's create claims it in the statement that claims the volume.
 */
export function allocateTarget(host: string, volumeId: string, maxTargets: string): string {
  return `allocate_iscsi_target(${host}, ${volumeId}, ${maxTargets})`;
}
