import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The compute half: images, instances and the volumes attached to them. */
export class CreateCompute1764000000030 implements MigrationInterface {
  name = 'CreateCompute1764000000030';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE images (
        id uuid PRIMARY KEY,
        name varchar(255),
        status varchar(32) NOT NULL CHECK (status IN ('queued', 'active', 'deleted')),
        disk_format varchar(32) NOT NULL CHECK (disk_format IN ('raw', 'qcow2')),
        container_format varchar(32) NOT NULL DEFAULT 'bare',
        size bigint CHECK (size >= 0),
        virtual_size bigint CHECK (virtual_size >= 0),
        checksum varchar(32),
        os_hash_value varchar(128),
        owner varchar(255),
        visibility varchar(32) NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
        min_disk integer NOT NULL DEFAULT 0 CHECK (min_disk >= 0),
        min_ram integer NOT NULL DEFAULT 0 CHECK (min_ram >= 0),
        file_name varchar(255),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    await q.query('CREATE INDEX images_live ON images (created_at) WHERE NOT deleted');
    await q.query(`
      CREATE TABLE instances (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        project_id varchar(255) NOT NULL,
        user_id varchar(255) NOT NULL,
        display_name varchar(255) NOT NULL,
        flavor_id varchar(255) NOT NULL,
        memory_mb integer NOT NULL CHECK (memory_mb > 0),
        vcpus integer NOT NULL CHECK (vcpus > 0),
        root_gb integer NOT NULL CHECK (root_gb >= 0),
        ephemeral_gb integer NOT NULL CHECK (ephemeral_gb >= 0),
        image_id uuid NOT NULL REFERENCES images (id),
        host varchar(255),
        vm_state varchar(32) NOT NULL,
        task_state varchar(32),
        fault_message text,
        launched_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false,
        -- the pairs of INSTANCE_STATES, and nothing else
        CONSTRAINT instances_state_check CHECK ((vm_state || '/' || coalesce(task_state, '')) IN (
          'building/scheduling', 'building/spawning', 'building/deleting', 'active/', 'active/rebooting',
          'active/rebooting_hard', 'active/deleting', 'error/', 'error/rebooting_hard', 'error/deleting', 'deleted/')),
        CONSTRAINT instances_deleted_state CHECK (deleted = (vm_state = 'deleted'))
      )`);
    await q.query(
      'CREATE INDEX instances_project_live ON instances (project_id, created_at) WHERE NOT deleted',
    );
    await q.query('CREATE INDEX instances_host_live ON instances (host) WHERE NOT deleted');
    // the volumes an instance has (or is being given): the guest's disks are rebuilt from these rows
    await q.query(`
      CREATE TABLE block_device_mappings (
        id uuid PRIMARY KEY,
        instance_uuid uuid NOT NULL REFERENCES instances (id),
        volume_id uuid NOT NULL REFERENCES volumes (id),
        device_name varchar(32) NOT NULL,
        volume_host varchar(255) NOT NULL,
        status varchar(32) NOT NULL CHECK (status IN ('attaching', 'attached', 'detaching')),
        -- the volume host's connection_info less its CHAP password (which stays in the volume's row)
        connection_info jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        deleted boolean NOT NULL DEFAULT false
      )`);
    // one live mapping per volume (no multiattach) and per device name of an instance
    await q.query(
      'CREATE UNIQUE INDEX block_device_mappings_volume_live ON block_device_mappings (volume_id) WHERE NOT deleted',
    );
    await q.query(
      'CREATE UNIQUE INDEX block_device_mappings_device_live ON block_device_mappings (instance_uuid, device_name) WHERE NOT deleted',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE block_device_mappings');
    await q.query('DROP TABLE instances');
    await q.query('DROP TABLE images');
  }
}
