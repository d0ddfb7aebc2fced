import type { ConnectionInfo } from '@basalt/contracts';
import type { ChapCredentials } from '@basalt/db';

/** Everything a target needs to serve one volume. */
export interface ExportSpec {
  readonly volumeId: string;
  /** The volume's name on its backend (file or logical volume), also the name of its target's config. */
  readonly name: string;
  readonly iqn: string;
  readonly tid: number;
  readonly backingPath: string;
  readonly chapUser: string;
  readonly chapPassword: string;
  /** Initiator addresses allowed in (the ACL); none means nobody can log in yet. */
  readonly initiators: readonly string[];
}

/** What names an export and its storage, without its credentials: enough to grow or remove it. */
export type ExportRef = Pick<ExportSpec, 'volumeId' | 'name' | 'iqn' | 'tid' | 'backingPath'>;

/**
 * An iSCSI target helper (Cinder's volume/targets/driver.py `Target`): it exports volumes and
 * says how to reach them. The manager decides what to export and with which target number; the
 * target knows its daemon, where it listens and what a connection needs.
 */
export interface IscsiTarget {
  /** Fails clearly when the target daemon is not there to export volumes. */
  checkForSetup(): Promise<void>;
  /** Creates (or completes) the export; doing it again changes nothing. */
  createExport(spec: ExportSpec): Promise<void>;
  /** What the daemon serves now: the target number of each IQN. */
  liveExports(): Promise<Map<string, number>>;
  /** Makes the daemon see the volume's new size. */
  extendExport(spec: ExportRef): Promise<void>;
  /**
   * Removes the export with its CHAP account and whatever it keeps for it; again changes nothing.
   * Without `chapUser` (a stored secret that no longer opens) the helper finds the account itself.
   */
  removeExport(spec: ExportRef & { readonly chapUser?: string }): Promise<void>;
  /**
   * The CHAP credentials the helper keeps for the export itself (tgt: its target's config file),
   * if it keeps any: the second source of a volume's credentials when its stored secret does not open.
   */
  storedCredentials(spec: Pick<ExportSpec, 'name' | 'iqn'>): Promise<ChapCredentials | undefined>;
  /** Where the volume is exported, as its `provider_location` records it. */
  providerLocation(spec: Pick<ExportSpec, 'tid' | 'iqn'>): string;
  /**
   * Lets `spec.initiators` in (the export is made if the daemon lost it) and returns what an
   * initiator needs to log in; `previous` is the ACL before this connection.
   */
  initializeConnection(spec: ExportSpec, previous: readonly string[]): Promise<ConnectionInfo>;
  /** Makes the ACL exactly `spec.initiators`, from `previous`. */
  terminateConnection(spec: ExportSpec, previous: readonly string[]): Promise<void>;
}
