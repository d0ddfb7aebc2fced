import type { MigrationInterface, QueryRunner } from 'typeorm';
import { allocateTargetFunction, EVERY_NUMBER } from './0003-allocate-target-function';

/**
 * The lowest free target number is 1 or one past a number in use: allocation looks at those
 * candidates (as many as the host has targets) instead of every number up to max_targets, which
 * cost a scan of the whole range on every create.
 */
export class AllocateTargetFromGaps1764000000005 implements MigrationInterface {
  name = 'AllocateTargetFromGaps1764000000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      allocateTargetFunction(
        'SELECT 1 AS n UNION ALL SELECT target_num + 1 FROM iscsi_targets WHERE host = p_host',
      ),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(allocateTargetFunction(EVERY_NUMBER));
  }
}
