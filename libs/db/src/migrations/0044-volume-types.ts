import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cinder's volume types: a name, extra specs the scheduler matches against what hosts report,
 * and for a private type the projects that may use it. Every volume has a type: the default
 * `__DEFAULT__` unless one is asked for (`volumes.volume_type` holds the type's id).
 */
export class VolumeTypes1764000000044 implements MigrationInterface {
  name = 'VolumeTypes1764000000044';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE volume_types (
        id uuid PRIMARY KEY,
        name varchar(255) NOT NULL,
        description varchar(255),
        is_public boolean NOT NULL DEFAULT true,
        extra_specs jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    await q.query('CREATE UNIQUE INDEX volume_types_name_live ON volume_types (name) WHERE NOT deleted');
    await q.query(`
      CREATE TABLE volume_type_projects (
        volume_type_id uuid NOT NULL REFERENCES volume_types (id),
        project_id varchar(255) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (volume_type_id, project_id)
      )`);
    await q.query(`
      INSERT INTO volume_types (id, name, description)
      VALUES (gen_random_uuid(), '__DEFAULT__', 'Default Volume Type')`);
    await q.query(`
      UPDATE volumes SET volume_type = (SELECT id::text FROM volume_types WHERE name = '__DEFAULT__')
       WHERE volume_type IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('UPDATE volumes SET volume_type = NULL');
    await q.query('DROP TABLE volume_type_projects');
    await q.query('DROP TABLE volume_types');
  }
}
