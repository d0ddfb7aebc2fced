import type { ImageSource } from './image-source';

/** The files of one instance under `[compute] instances_path`, as the seed's compute node shows them. */
export interface InstancePaths {
  /** `<instances_path>/instance-%08x`. */
  readonly dir: string;
  /** Root disk: qcow2 over `_base/<sha1>` or `_base/<sha1>_<root_gb>`. */
  readonly disk: string;
  /** Ephemeral disk: qcow2 over `_base/ephemeral_0_<gb>_None` (only with an ephemeral flavor). */
  readonly diskLocal: string;
  readonly libvirtXml: string;
  readonly consoleLog: string;
  /** Unix socket of the second serial port (`[compute] serial_shell`). */
  readonly shellSocket: string;
}

/** What an instance's local disks are made from. */
export interface InstanceDisksRequest {
  /** The instance's hypervisor name (`instance-%08x`), also its folder's name. */
  readonly name: string;
  readonly image: ImageSource;
  /** The flavor's root size; 0 keeps the image's own size (m1.tiny). */
  readonly rootGb: number;
  /** The flavor's ephemeral size; 0 means no `disk.local`. */
  readonly ephemeralGb: number;
}

/** Instance folders and the `_base` image cache (Nova's imagebackend Qcow2 + imagecache). */
export interface InstanceStorage {
  paths(name: string): InstancePaths;
  /**
   * Creates the folder, `disk` (and `disk.local`) over cached bases, fetching the image into
   * `_base` once per host; files already there are kept, so a repeat is harmless.
   */
  createDisks(request: InstanceDisksRequest): Promise<InstancePaths>;
  /** Writes `libvirt.xml` (atomically) for operators to read. */
  writeLibvirtXml(name: string, xml: string): Promise<void>;
  /** Removes the instance's folder and everything in it; `_base` stays. A missing folder is fine. */
  removeInstance(name: string): Promise<void>;
}
