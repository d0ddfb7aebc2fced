/** Where a host's volumes are stored. Every method is idempotent: a redelivered request is harmless. */
export interface VolumeDriver {
  /** Whether volumes take space only as they are written (so capacity may be oversubscribed). */
  readonly thin: boolean;
  /** The pool volumes go to: the volume group, or the file backend itself. */
  readonly poolName: string;
  /** Fails with a clear message when the backend cannot work (no volume group, no directory). */
  checkForSetup(): Promise<void>;
  createVolume(name: string, sizeGb: number): Promise<void>;
  /** Removing a volume that is already gone succeeds. */
  deleteVolume(name: string): Promise<void>;
  extendVolume(name: string, newSizeGb: number): Promise<void>;
  /** A point-in-time copy of volume `volumeName` (of `sizeGb`), named `name`; again it changes nothing. */
  createSnapshot(name: string, volumeName: string, sizeGb: number): Promise<void>;
  /** Removing a snapshot that is already gone succeeds. */
  deleteSnapshot(name: string): Promise<void>;
  /** Volume `name` of `sizeGb` holding the data of `source` (of `sourceSizeGb`), then grown. */
  createVolumeFrom(name: string, sizeGb: number, source: VolumeSource): Promise<void>;
  /** The block device or file tgt exports for the volume. */
  backingPath(name: string): string;
  capacity(): Promise<Capacity>;
  /** Every volume the backend holds, and whether it carries Basalt's marker (for the reconciler). */
  inventory(): Promise<BackendVolume[]>;
}

export interface BackendVolume {
  readonly name: string;
  /** Made by Basalt: in its own volumes directory, or tagged `basalt` in the volume group. */
  readonly marked: boolean;
}

/** The LVM tag every logical volume Basalt creates carries. */
export const BASALT_TAG = 'basalt';

/** What a new volume's data comes from: a snapshot, or another volume (a clone). */
export interface VolumeSource {
  readonly kind: 'snapshot' | 'volume';
  /** The snapshot's or the volume's name on the backend. */
  readonly name: string;
  readonly sizeGb: number;
}

export interface Capacity {
  readonly totalGb: number;
  /** Space not yet used on the backend. */
  readonly freeGb: number;
  /** The sum of the sizes of the volumes on it. */
  readonly provisionedGb: number;
}
