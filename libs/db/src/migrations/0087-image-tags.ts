import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Glance's image tags: a set of strings per image, kept in the order they were first given. */
export class ImageTags1764000000087 implements MigrationInterface {
  name = 'ImageTags1764000000087';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE images ADD COLUMN tags text[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE images DROP COLUMN tags');
  }
}
