/** A domain's state as `virsh domstate` names it. */
export type DomainState =
  | 'running'
  | 'idle'
  | 'paused'
  | 'in shutdown'
  | 'shut off'
  | 'crashed'
  | 'pmsuspended';

/** One row of `virsh domblklist --details`. */
export interface BlockDevice {
  /** `file`, `block` or `network`. */
  readonly type: string;
  /** `disk` or `cdrom`. */
  readonly device: string;
  /** `vda`, `vdb`, ... */
  readonly target: string;
  /** The file or device path, or `IQN/LUN` for a network disk; `-` when empty. */
  readonly source: string;
}

/**
 * The hypervisor as the compute manager uses it (Nova's ComputeDriver, libvirt flavour). Every
 * method is idempotent: a redelivered request or a restarted worker repeats it harmlessly.
 */
export interface Hypervisor {
  /** Fails with a clear message when libvirtd cannot be reached at `[compute] libvirt_uri`. */
  checkForSetup(): Promise<void>;
  /** Defines the domain persistently from `xml` and starts it; a running domain is left running. */
  spawn(name: string, xml: string): Promise<void>;
  /** `undefined` when no domain of that name is defined. */
  state(name: string): Promise<DomainState | undefined>;
  /** Powers the domain off and undefines it; a domain already gone is fine. */
  destroy(name: string): Promise<void>;
  /**
   * ACPI shutdown, wait up to `timeoutMs` for the guest to power off, then start it again.
   * Resolves false when the guest ignored the request: the caller falls back to a hard reboot.
   */
  softReboot(name: string, timeoutMs: number): Promise<boolean>;
  /** Powers off, redefines from `xml` (rebuilt from the database) and starts again. */
  hardReboot(name: string, xml: string): Promise<void>;
  /** The domain's disks, from `virsh domblklist --details`. */
  blockDevices(name: string): Promise<readonly BlockDevice[]>;
  /**
   * Hot-plugs a disk into the running domain and its persistent definition (`--live --config`),
   * or only the definition when the domain is not running. A disk already there is fine.
   */
  attachDisk(name: string, diskXml: string): Promise<void>;
  /**
   * Removes a disk live and from the definition, then polls `domblklist` until `target` is gone
   * (virsh reports success before the guest let go); `DeviceDetachTimeoutError` after `timeoutMs`,
   * `DomainNotFoundError` when no such domain is defined.
   */
  detachDisk(name: string, target: string, diskXml: string, timeoutMs: number): Promise<void>;
  /**
   * Tells the running guest its disk `target` is now `bytes` long (`virsh blockresize`), which
   * the guest sees as a capacity change; false when the domain is not running (it reads the size
   * when it starts).
   */
  resizeDisk(name: string, target: string, bytes: number): Promise<boolean>;
  /** Names of every domain defined on this host, running or not. */
  listDomains(): Promise<readonly string[]>;
  /** The domain's persistent XML, `undefined` when no domain of that name is defined. */
  definition(name: string): Promise<string | undefined>;
}

/** libvirt secrets keyed by usage name: where a CHAP password lives so it is never on a command line. */
export interface SecretStore {
  /** Defines the `iscsi` secret `usage` without a value (again, it changes nothing); returns its UUID. */
  define(usage: string): Promise<string>;
  /** Sets the value of the `iscsi` secret `usage`, defining it first if it is not; returns its UUID. */
  ensure(usage: string, value: string): Promise<string>;
  /** Undefines it; a secret already gone is fine. */
  remove(usage: string): Promise<void>;
  /** Its UUID, or `undefined` when no such secret is defined. */
  lookup(usage: string): Promise<string | undefined>;
}

/** What the reconciler reads of the secrets: every `iscsi` secret's usage name on this libvirtd. */
export interface SecretInventory {
  usages(): Promise<readonly string[]>;
}
