import { stateTable } from './states';

/** Every status a snapshot row can hold; `deleted` is final (the row stays, `deleted` set too). */
export const SNAPSHOT_STATUSES = [
  'creating',
  'available',
  'deleting',
  'error',
  'error_deleting',
  'deleted',
] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

const LIVE = SNAPSHOT_STATUSES.filter((s): s is Exclude<SnapshotStatus, 'deleted'> => s !== 'deleted');

/** Statuses from which a snapshot may be deleted (Cinder's), and what a cascade takes besides. */
const DELETABLE = ['available', 'error', 'error_deleting'] as const;

/** The snapshot's moves, each a compare-and-swap on `status`, as VOLUME_STATES. */
export const SNAPSHOT_STATES = stateTable('snapshot', SNAPSHOT_STATUSES, {
  finishCreate: { from: ['creating'], to: 'available', by: ['volume-worker'] },
  /** The worker could not make it, or the API could not reach the worker. */
  failCreate: { from: ['creating'], to: 'error', by: ['api', 'volume-worker'] },
  beginDelete: { from: DELETABLE, to: 'deleting', by: ['api'] },
  /** A volume's cascade delete takes its snapshots with it, one already deleting too. */
  beginCascadeDelete: { from: [...DELETABLE, 'deleting'], to: 'deleting', by: ['api'] },
  /** An admin's os-force_delete also takes a snapshot stuck creating or deleting. */
  beginForceDelete: { from: [...DELETABLE, 'creating', 'deleting'], to: 'deleting', by: ['api'] },
  failDelete: { from: ['deleting'], to: 'error_deleting', by: ['api', 'volume-worker'] },
  finishDelete: { from: ['deleting'], to: 'deleted', by: ['volume-worker'] },
  /** os-update_snapshot_status: its creator says how a create or delete went (Cinder's map). */
  report: {
    from: ['creating', 'deleting'],
    to: ['creating', 'available', 'error', 'deleting', 'error_deleting'],
    by: ['api'],
  },
  /** An accepted transfer of its volume moves an available snapshot to the acceptor's project. */
  transfer: { from: ['available'], to: 'available', by: ['api'] },
  /** An admin's os-reset_status: any live status to any live status. */
  reset: { from: LIVE, to: LIVE, by: ['api'] },
});

/** The statuses of a volume a snapshot may be taken of; `in-use` only with `force`. */
export const SNAPSHOTTABLE_STATUSES = ['available'] as const;
export const FORCE_SNAPSHOTTABLE_STATUSES = ['available', 'in-use'] as const;
