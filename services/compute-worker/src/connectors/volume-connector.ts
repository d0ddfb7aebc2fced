import type { ConnectionInfo, Connector } from '@basalt/contracts';
import type { DiskSource } from '../virt/domain-spec';

/** What a connected volume leaves behind on this host, so it can be undone from the database alone. */
export type ConnectionResource =
  /** A libvirt secret holding the CHAP password (qemu connector). */
  | { readonly kind: 'libvirt-secret'; readonly usage: string }
  /** An open-iscsi node record and session (iscsiadm connector). */
  | {
      readonly kind: 'iscsi-session';
      readonly portal: string;
      readonly iqn: string;
      readonly lun: number;
      readonly devicePath: string;
    };

/** A volume as the guest XML sees it, plus what to clean up when it goes. */
export interface VolumeConnection {
  readonly source: DiskSource;
  readonly resources: readonly ConnectionResource[];
}

/**
 * os-brick's connector shape: how this host reaches a volume. Chosen by
 * `[compute] volume_connector`. Every method is idempotent and derives everything from the
 * `connection_info` the volume host returned, so a restarted worker can rebuild or undo an
 * attachment from the block-device mapping row.
 */
export interface VolumeConnector {
  readonly kind: 'qemu' | 'iscsiadm';
  /** The `connector` dict for `initialize_connection`: this host's IP, initiator IQN and host name. */
  properties(): Connector;
  /** Pure: the disk source and resources `connect` makes, without making them (XML rebuilds). */
  describe(info: ConnectionInfo): VolumeConnection;
  /**
   * What can be made ready for the volume before its connection is known, while the volume host
   * is asked for it (the CHAP secret, without its value); `forget` undoes it.
   */
  prepare(volumeId: string): Promise<void>;
  /** Makes the volume reachable (the CHAP secret's value / logs in and waits for the device). */
  connect(info: ConnectionInfo): Promise<VolumeConnection>;
  /**
   * Has this host see the volume's new size after it grew (os-brick's extend_volume), before the
   * guest's disk is resized to it.
   */
  extend(info: ConnectionInfo): Promise<void>;
  /** Undoes `connect`; a volume already disconnected is fine. */
  disconnect(info: ConnectionInfo): Promise<void>;
  /** Undoes `prepare` of a volume that was never connected (no connection recorded). */
  forget(volumeId: string): Promise<void>;
}
