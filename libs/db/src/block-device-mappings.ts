import { randomUUID } from 'node:crypto';
import { InvalidInputError, InvalidStateError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { compareAndSwap, type StatefulTable } from './sql';
import { type Move, stateTable } from './states';
import { VOLUMES } from './volume-records';
import { VOLUME_STATES } from './volume-states';

export const MAPPING_STATUSES = ['attaching', 'attached', 'detaching'] as const;
export type MappingStatus = (typeof MAPPING_STATUSES)[number];

/** A volume mapping's moves; it ends by being removed (soft-deleted), whatever its status. */
export const MAPPING_STATES = stateTable('block device mapping', MAPPING_STATUSES, {
  attached: { from: ['attaching'], to: 'attached', by: ['compute-worker'] },
  beginDetach: { from: ['attached'], to: 'detaching', by: ['api'] },
  rollDetaching: { from: ['detaching'], to: 'attached', by: ['api', 'compute-worker'] },
});

const MAPPINGS: StatefulTable<object> = {
  table: 'block_device_mappings',
  stateColumn: 'status',
  columns: {},
};

/** A volume given to an instance: the guest's disks are rebuilt from these rows. */
export interface BlockDeviceMapping {
  readonly id: string;
  readonly instanceUuid: string;
  readonly volumeId: string;
  /** `/dev/vdX`: the device name asked for (the guest may name it otherwise). */
  readonly deviceName: string;
  /** The device's tag given at attach (nova 2.49); the guest finds it in its device metadata. */
  readonly tag: string | null;
  /** The volume host whose `initialize_connection` gives the connection (and its secret). */
  readonly volumeHost: string;
  readonly status: MappingStatus;
  /**
   * The connection as the volume host gave it, without its CHAP password: enough to undo the
   * connection (secret usage, portal and IQN), never to make one.
   */
  readonly connectionInfo: Record<string, unknown> | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/**
 * The block_device_mappings table. A connection's CHAP secret is not stored here: it stays in the
 * volume's row, and a connection is asked of the volume host whenever it is (re)made.
 */
export class BlockDeviceMappingRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * The API's reservation of an attach, in one transaction: the volume goes `available` →
   * `attaching` by compare-and-swap and the mapping is
   * recorded. Of two attaches of one volume exactly one gets here; the other gets an InvalidStateError (a 400).
   */
  async reserve(input: {
    instanceUuid: string;
    volumeId: string;
    deviceName: string;
    tag?: string;
  }): Promise<BlockDeviceMapping> {
    return this.ds.transaction(async (tx) => {
      const volume = await compareAndSwap(
        tx,
        VOLUMES,
        input.volumeId,
        VOLUME_STATES.moves.reserve,
        { attachStatus: 'attaching' },
        ['host IS NOT NULL'],
      );
      if (!volume) {
        throw new InvalidStateError(`Invalid volume: volume ${input.volumeId} status must be 'available'`);
      }
      try {
        const [row] = await tx.query(
          `INSERT INTO block_device_mappings (id, instance_uuid, volume_id, device_name, tag, volume_host, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'attaching') RETURNING *`,
          [
            randomUUID(),
            input.instanceUuid,
            input.volumeId,
            input.deviceName,
            input.tag ?? null,
            String(volume.host),
          ],
        );
        return toMapping(row);
      } catch (error) {
        if ((error as { code?: string }).code === '23505') {
          throw new InvalidInputError(`The device name ${input.deviceName} is in use on this server.`);
        }
        throw error;
      }
    });
  }

  /** Moves a live mapping along `move` by compare-and-swap; false when it was not in a source. */
  async transition(id: string, move: Move<MappingStatus>): Promise<boolean> {
    return (await compareAndSwap(this.ds, MAPPINGS, id, move, {}, ['NOT deleted'])) !== undefined;
  }

  /**
   * The API's start of a detach: the volume `in-use` → `detaching` and the mapping `attached` →
   * `detaching`, together or not at all.
   */
  async beginDetach(mapping: BlockDeviceMapping): Promise<void> {
    await this.ds.transaction(async (tx) => {
      const volume = await compareAndSwap(tx, VOLUMES, mapping.volumeId, VOLUME_STATES.moves.beginDetach, {
        attachStatus: 'detaching',
      });
      const row = await compareAndSwap(tx, MAPPINGS, mapping.id, MAPPING_STATES.moves.beginDetach, {}, [
        'NOT deleted',
      ]);
      if (!volume || !row) {
        throw new InvalidStateError(
          `Invalid volume: volume ${mapping.volumeId} must be attached (in-use) to be detached`,
        );
      }
    });
  }

  /** Records the connection made for the mapping (its password already taken out). */
  async recordConnection(id: string, connectionInfo: Record<string, unknown>): Promise<void> {
    await this.ds.query(
      'UPDATE block_device_mappings SET connection_info = $2, updated_at = now() WHERE id = $1 AND NOT deleted',
      [id, JSON.stringify(connectionInfo)],
    );
  }

  /** The mapping is over (detached, rolled back, or its instance deleted). */
  async remove(id: string): Promise<void> {
    await this.ds.query(
      `UPDATE block_device_mappings SET deleted = true, deleted_at = now(), updated_at = now()
        WHERE id = $1 AND NOT deleted`,
      [id],
    );
  }

  async find(id: string): Promise<BlockDeviceMapping | undefined> {
    const rows = await this.ds.query('SELECT * FROM block_device_mappings WHERE id = $1 AND NOT deleted', [
      id,
    ]);
    return rows[0] ? toMapping(rows[0]) : undefined;
  }

  /** The live mappings of the instances on `host` that sat in a transitional status for `idleForSec`. */
  async stalledOnHost(host: string, idleForSec: number): Promise<BlockDeviceMapping[]> {
    const rows = await this.ds.query(
      `SELECT m.* FROM block_device_mappings m JOIN instances i ON i.id = m.instance_uuid
        WHERE i.host = $1 AND NOT m.deleted AND m.status IN ('attaching', 'detaching')
          AND m.updated_at < now() - make_interval(secs => $2) ORDER BY m.created_at`,
      [host, idleForSec],
    );
    return rows.map(toMapping);
  }

  async forVolume(instanceUuid: string, volumeId: string): Promise<BlockDeviceMapping | undefined> {
    const rows = await this.ds.query(
      'SELECT * FROM block_device_mappings WHERE instance_uuid = $1 AND volume_id = $2 AND NOT deleted',
      [instanceUuid, volumeId],
    );
    return rows[0] ? toMapping(rows[0]) : undefined;
  }

  /** An instance's live mappings, in the order they were made (the order of its disks). */
  async forInstance(instanceUuid: string): Promise<BlockDeviceMapping[]> {
    const rows = await this.ds.query(
      'SELECT * FROM block_device_mappings WHERE instance_uuid = $1 AND NOT deleted ORDER BY created_at, id',
      [instanceUuid],
    );
    return rows.map(toMapping);
  }
}

function toMapping(r: Record<string, unknown>): BlockDeviceMapping {
  return {
    id: String(r.id),
    instanceUuid: String(r.instance_uuid),
    volumeId: String(r.volume_id),
    deviceName: String(r.device_name),
    tag: (r.tag as string | null) ?? null,
    volumeHost: String(r.volume_host),
    status: r.status as MappingStatus,
    connectionInfo: (r.connection_info as Record<string, unknown> | null) ?? null,
    createdAt: new Date(String(r.created_at)),
    updatedAt: new Date(String(r.updated_at)),
  };
}
