import { randomUUID } from 'node:crypto';
import {
  type DataSource,
  SNAPSHOTTABLE_STATUSES,
  type SnapshotRecord,
  SnapshotRepository,
  type VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { UNLIMITED_QUOTAS } from './db';

/**
 * Volume types, volumes and snapshots made through the quota-checked statements the API uses,
 * with no quota of their own in the way (the project's limits decide).
 */
export function quotaRig(ds: DataSource) {
  const volumes = new VolumeRepository(ds);
  const snapshots = new SnapshotRepository(ds);
  const newType = async (name: string): Promise<string> => {
    const id = randomUUID();
    await ds.query('INSERT INTO volume_types (id, name, is_public) VALUES ($1, $2, true)', [id, name]);
    return id;
  };
  const create = (project: string, type: string | null, size = 1) =>
    volumes.createWithinQuota(
      {
        size,
        projectId: project,
        userId: 'u',
        availabilityZone: 'nova',
        displayName: null,
        displayDescription: null,
        volumeType: type,
      },
      'volume-%08x',
      UNLIMITED_QUOTAS,
    );
  /** The volume as a worker leaves it: on a host, available. */
  const placed = async (volume: VolumeRecord): Promise<VolumeRecord> => {
    await ds.query("UPDATE volumes SET host = 'host-a', status = 'available' WHERE id = $1", [volume.id]);
    return volumes.get(volume.id);
  };
  const snapshotOf = (volume: VolumeRecord) =>
    snapshots.createWithinQuota(
      {
        volumeId: volume.id,
        projectId: volume.projectId,
        userId: 'u',
        displayName: 'snap',
        displayDescription: null,
        metadata: {},
        volumeStatuses: SNAPSHOTTABLE_STATUSES,
      },
      UNLIMITED_QUOTAS,
    );
  /** A snapshot as its worker leaves it: available. */
  const availableSnapshotOf = async (volume: VolumeRecord): Promise<SnapshotRecord> => {
    const snapshot = await snapshotOf(volume);
    await ds.query("UPDATE snapshots SET status = 'available' WHERE id = $1", [snapshot.id]);
    return snapshots.get(snapshot.id);
  };
  return { volumes, snapshots, newType, create, placed, snapshotOf, availableSnapshotOf };
}
