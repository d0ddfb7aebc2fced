import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The size an extend is growing a volume to, kept while it is `extending`: a worker that finds an
 * extend stalled (its message lost) can finish it without the message.
 */
export class ExtendTo1764000000007 implements MigrationInterface {
  name = 'ExtendTo1764000000007';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE volumes ADD COLUMN extend_to integer CHECK (extend_to > 0)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE volumes DROP COLUMN extend_to');
  }
}
