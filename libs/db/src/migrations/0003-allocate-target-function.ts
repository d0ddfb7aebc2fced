import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Target-number allocation as one server-side step: the per-host lock, the lookup of an existing
 * number and the insert of the lowest free one cost one round trip instead of five.
 * allocate_iscsi_target gives a volume the lowest number up to the host's max_targets that no
 * target of the host uses.
 */
export class AllocateTargetFunction1764000000003 implements MigrationInterface {
  name = 'AllocateTargetFunction1764000000003';

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
          SELECT p_host, c.n, p_volume FROM (SELECT generate_series(1, p_max) AS n) AS c
           WHERE c.n <= p_max
             AND NOT EXISTS (SELECT 1 FROM iscsi_targets t WHERE t.host = p_host AND t.target_num = c.n)
           ORDER BY c.n LIMIT 1
          RETURNING target_num INTO found;
        RETURN found;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP FUNCTION allocate_iscsi_target(varchar, uuid, integer)');
  }
}
