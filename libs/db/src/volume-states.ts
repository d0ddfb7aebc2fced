import { stateTable } from './states';

/** Every status a volume row can hold; `deleted` is final (the row stays for history, `deleted` set too). */
export const VOLUME_STATUSES = [
  'creating',
  'available',
  'attaching',
  'in-use',
  'detaching',
  'deleting',
  'error',
  'error_deleting',
  'extending',
  'error_extending',
  // an operator's hold, set only through os-reset_status
  'maintenance',
  'awaiting-transfer',
  // copied into an image (os-volume_upload_image)
  'uploading',
  'deleted',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];

/** Every status but the final one: what a live volume can be in, and what an admin may reset it to. */
const LIVE = VOLUME_STATUSES.filter((s): s is Exclude<VolumeStatus, 'deleted'> => s !== 'deleted');

/** Statuses from which a volume may be deleted (Cinder's list, less what Basalt has no notion of). */
const DELETABLE = ['available', 'error', 'error_extending', 'error_deleting'] as const;
/** What an admin's os-force_delete takes besides: a volume stuck in a transitional or held state. */
const FORCE_DELETABLE = [
  ...DELETABLE,
  'creating',
  'attaching',
  'extending',
  'deleting',
  'maintenance',
] as const;

/** What an admin's os-force_detach takes: a volume in use, stuck attaching or detaching, or reset. */
const FORCE_DETACHABLE = ['in-use', 'attaching', 'detaching', 'error', 'maintenance'] as const;

/**
 * The volume's moves, each a compare-and-swap on `status`. A move from a state to itself is a
 * claim: the caller wins the row in that state (and may set other columns) without changing it.
 */
export const VOLUME_STATES = stateTable('volume', VOLUME_STATUSES, {
  /** The scheduler records the host it chose, once. */
  place: { from: ['creating'], to: 'creating', by: ['scheduler'] },
  /** No host, no scheduler, no worker could create it. */
  failCreate: { from: ['creating'], to: 'error', by: ['api', 'scheduler', 'volume-worker'] },
  /** The worker takes up a create: CHAP secret and target number. */
  claimCreate: { from: ['creating'], to: 'creating', by: ['volume-worker'] },
  finishCreate: { from: ['creating'], to: 'available', by: ['volume-worker'] },
  /** A volume that never reached a host has nothing to clean up: it goes at once. */
  deleteUnplaced: { from: DELETABLE, to: 'deleted', by: ['api'] },
  beginDelete: { from: DELETABLE, to: 'deleting', by: ['api'] },
  forceDeleteUnplaced: { from: FORCE_DELETABLE, to: 'deleted', by: ['api'] },
  beginForceDelete: { from: FORCE_DELETABLE, to: 'deleting', by: ['api'] },
  failDelete: { from: ['deleting'], to: 'error_deleting', by: ['api', 'volume-worker'] },
  finishDelete: { from: ['deleting'], to: 'deleted', by: ['volume-worker'] },
  beginExtend: { from: ['available'], to: 'extending', by: ['api'] },
  /** The extend never reached the host: the volume is as it was. */
  cancelExtend: { from: ['extending'], to: 'available', by: ['api'] },
  finishExtend: { from: ['extending'], to: 'available', by: ['volume-worker'] },
  failExtend: { from: ['extending'], to: 'error_extending', by: ['volume-worker'] },
  /** An attached volume grows while it stays attached (Cinder 3.42): it goes back to in-use. */
  beginExtendAttached: { from: ['in-use'], to: 'extending', by: ['api'] },
  cancelExtendAttached: { from: ['extending'], to: 'in-use', by: ['api'] },
  finishExtendAttached: { from: ['extending'], to: 'in-use', by: ['volume-worker'] },
  /** A detach asked for by the API, or the compute host letting go of a deleted instance's volumes. */
  beginDetach: { from: ['in-use'], to: 'detaching', by: ['api', 'compute-worker'] },
  /** A detach that could not be sent, or the guest would not release the disk: still attached. */
  rollDetaching: { from: ['detaching'], to: 'in-use', by: ['api', 'compute-worker'] },
  /** A repeated attach finds the volume in-use and leaves it so. */
  attach: { from: ['attaching', 'in-use'], to: 'in-use', by: ['volume-worker'] },
  /** No connection is attached any more; from attaching, an attach that failed rolls back. */
  detach: { from: ['detaching', 'attaching'], to: 'available', by: ['volume-worker'] },
  /** Another connection is still attached: the volume stays in use. */
  detachOne: { from: ['detaching', 'attaching'], to: 'in-use', by: ['volume-worker'] },
  /** os-attach records an attachment without a connection: the volume is in use at once. */
  recordAttach: { from: ['available', 'attaching'], to: 'in-use', by: ['api'] },
  /** os-detach ends a recorded attachment: available once none is attached, else still in use. */
  recordDetach: { from: ['in-use'], to: ['available', 'in-use'], by: ['api'] },
  /** An admin's os-force_detach: the same, from a volume stuck or reset as well. */
  forceDetach: { from: FORCE_DETACHABLE, to: ['available', 'in-use'], by: ['api'] },
  /**
   * os-reserve, or the compute API's attach, holds a volume for an attach that has not begun;
   * os-unreserve (or an attach that could not be sent) lets it go.
   */
  reserve: { from: ['available'], to: 'attaching', by: ['api'] },
  unreserve: { from: ['attaching'], to: 'available', by: ['api'] },
  /** os-retype without migration: the type changes, the status stays. */
  retypeAvailable: { from: ['available'], to: 'available', by: ['api'] },
  retypeInUse: { from: ['in-use'], to: 'in-use', by: ['api'] },
  /** A transfer offers the volume to another project; cancelled or accepted, it is available again. */
  offerTransfer: { from: ['available'], to: 'awaiting-transfer', by: ['api'] },
  endTransfer: { from: ['awaiting-transfer'], to: 'available', by: ['api'] },
  /** os-volume_upload_image: the volume is read into an image, then available again, copied or not. */
  beginUpload: { from: ['available'], to: 'uploading', by: ['api'] },
  /** The upload could not be sent to the volume's host. */
  cancelUpload: { from: ['uploading'], to: 'available', by: ['api'] },
  finishUpload: { from: ['uploading'], to: 'available', by: ['volume-worker'] },
  failUpload: { from: ['uploading'], to: 'available', by: ['volume-worker'] },
  /** An admin's os-reset_status: any live status to any live status. */
  reset: { from: LIVE, to: LIVE, by: ['api'] },
});

/**
 * The statuses in which a volume is exported: the worker keeps their targets served. A volume
 * attaching or detaching has a guest connected too: without its target a detach waits on a guest
 * that cannot let go of a disk whose I/O hangs.
 */
export const EXPORTED_STATUSES: readonly VolumeStatus[] = ['available', 'attaching', 'in-use', 'detaching'];

/** The statuses in which an initiator may connect to a volume. */
export const CONNECTABLE_STATUSES: readonly VolumeStatus[] = ['available', 'attaching', 'in-use'];

/** A volume's `attach_status` column (Cinder's), set alongside the status by attach and detach. */
export const ATTACH_STATUSES = ['detached', 'attaching', 'attached', 'detaching'] as const;
export type AttachStatus = (typeof ATTACH_STATUSES)[number];
