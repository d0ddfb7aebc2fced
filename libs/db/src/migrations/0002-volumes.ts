import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateVolumes1764000000002 implements MigrationInterface {
  name = 'CreateVolumes1764000000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE volumes (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        backend_name varchar(255) NOT NULL,
        size integer NOT NULL CHECK (size > 0),
        status varchar(32) NOT NULL,
        status_reason text,
        attach_status varchar(32) NOT NULL DEFAULT 'detached',
        host varchar(255),
        availability_zone varchar(255) NOT NULL,
        project_id varchar(255) NOT NULL,
        user_id varchar(255) NOT NULL,
        display_name varchar(255),
        display_description text,
        volume_type varchar(255),
        provider_location text,
        provider_auth text,
        scheduled_at timestamptz,
        launched_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    await q.query('CREATE INDEX volumes_project_live ON volumes (project_id, created_at) WHERE NOT deleted');
    await q.query('CREATE INDEX volumes_host_live ON volumes (host) WHERE NOT deleted');
    await q.query(`
      CREATE TABLE iscsi_targets (
        host varchar(255) NOT NULL,
        target_num integer NOT NULL CHECK (target_num > 0),
        volume_id uuid NOT NULL UNIQUE REFERENCES volumes (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (host, target_num)
      )`);
    await q.query(`
      CREATE TABLE volume_attachments (
        id uuid PRIMARY KEY,
        volume_id uuid NOT NULL REFERENCES volumes (id),
        initiator varchar(255) NOT NULL,
        ip varchar(255) NOT NULL,
        connector_host varchar(255),
        instance_uuid varchar(255),
        mountpoint varchar(255),
        attach_status varchar(32) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    await q.query(
      'CREATE UNIQUE INDEX volume_attachments_live ON volume_attachments (volume_id, initiator) WHERE NOT deleted',
    );
    await q.query(`
      CREATE TABLE quotas (
        project_id varchar(255) NOT NULL,
        resource varchar(64) NOT NULL,
        hard_limit integer NOT NULL CHECK (hard_limit >= -1),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, resource)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE quotas');
    await q.query('DROP TABLE volume_attachments');
    await q.query('DROP TABLE iscsi_targets');
    await q.query('DROP TABLE volumes');
  }
}
