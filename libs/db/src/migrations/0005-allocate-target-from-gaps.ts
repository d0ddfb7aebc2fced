import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The lowest free target number is 1 or one past a number in use: allocation looks at those
 * candidates (as many as the host has targets) instead of every number up to max_targets, which
 * cost a scan of the whole range on every create.
 */
export class AllocateTargetFromGaps1764000000005 implements MigrationInterface {
  name = 'AllocateTargetFromGaps1764000000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION allocate_iscsi_target(p_host varchar, p_volume uuid, p_max integer) RETURNS integer
      LANGUAGE plpgsql AS $$
      DECLARE
        found integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('iscsi_targets:' || p_host));
        SELECT target_num INTO found FROM iscsi_targets WHERE volume_id = p_volume;
        IF found IS NOT NULL THEN
          RETURN found;
        END IF;
        INSERT INTO iscsi_targets (host, target_num, volume_id)
          SELECT p_host, c.n, p_volume FROM (SELECT 1 AS n UNION ALL SELECT target_num + 1 FROM iscsi_targets WHERE host = p_host) AS c
           WHERE c.n <= p_max
             AND NOT EXISTS (SELECT 1 FROM iscsi_targets t WHERE t.host = p_host AND t.target_num = c.n)
           ORDER BY c.n LIMIT 1
          RETURNING target_num INTO found;
        RETURN found;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    // allocate_iscsi_target as 0003 made it
    await q.query(`
      CREATE OR REPLACE FUNCTION allocate_iscsi_target(p_host varchar, p_volume uuid, p_max integer) RETURNS integer
      LANGUAGE plpgsql AS $$
      DECLARE
        found integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('iscsi_targets:' || p_host));
        SELECT target_num INTO found FROM iscsi_targets WHERE volume_id = p_volume;
        IF found IS NOT NULL THEN
          RETURN found;
        END IF;
        INSERT INTO iscsi_targets (host, target_num, volume_id)
          SELECT p_host, c.n, p_volume FROM (SELECT generate_series(1, p_max) AS n) AS c
           WHERE c.n <= p_max
             AND NOT EXISTS (SELECT 1 FROM iscsi_targets t WHERE t.host = p_host AND t.target_num = c.n)
           ORDER BY c.n LIMIT 1
          RETURNING target_num INTO found;
        RETURN found;
      END
      $$`);
  }
}
