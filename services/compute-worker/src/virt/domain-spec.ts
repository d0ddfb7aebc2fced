import type { ConnectionInfo } from '@basalt/contracts';
import { InvalidInputError } from '@basalt/errors';
import type { VolumeConnector } from '../connectors/volume-connector';
import type { InstancePaths } from '../imagecache/instance-storage';

/** Where a guest disk's bytes come from, in the terms of libvirt's `<disk type=...>`. */
export type DiskSource =
  /** A local image file: the instance's `disk` / `disk.local` qcow2 overlays. */
  | { readonly type: 'file'; readonly path: string; readonly format: 'qcow2' | 'raw' }
  /** A host block device: a volume logged in by the kernel initiator (`/dev/disk/by-path/...`). */
  | { readonly type: 'block'; readonly path: string }
  /** A LUN QEMU reaches itself with its built-in iSCSI initiator (libiscsi). */
  | {
      readonly type: 'network';
      readonly protocol: 'iscsi';
      /** `<target iqn>/<lun>`. */
      readonly name: string;
      readonly host: { readonly name: string; readonly port: number };
      /** The IQN QEMU logs in with, so the target's ACL can name this host. */
      readonly initiatorIqn?: string;
      /** CHAP: the user name and the usage name of the libvirt secret that holds the password. */
      readonly auth?: { readonly username: string; readonly secretUsage: string };
    };

/** One disk of the guest. */
export interface GuestDisk {
  readonly source: DiskSource;
  /** The libvirt target (`vda`, `vdb`, ...): a hint only; the guest names disks in PCI order. */
  readonly target: string;
  /** Shown to the guest as `/sys/block/vdX/serial`: the volume id for volumes. */
  readonly serial?: string;
}

/**
 * Everything the domain XML depends on. It is derived from the database (the instance row, its
 * flavor's figures and its block-device mappings), never from the running domain, so a hard
 * reboot or a restarted compute worker rebuilds exactly the same guest.
 */
export interface DomainSpec {
  /** `instance-%08x` (`[compute] instance_name_template`). */
  readonly name: string;
  readonly uuid: string;
  readonly virtType: 'kvm' | 'qemu';
  readonly memoryMb: number;
  readonly vcpus: number;
  /** Root disk first (`vda`, which the BIOS boots), then the ephemeral disk, then volumes. */
  readonly disks: readonly GuestDisk[];
  /** Serial port 0, a file: the guest console. */
  readonly consoleLog: string;
  /** Serial port 1, a unix socket libvirt listens on (`[compute] serial_shell`); absent in production. */
  readonly shellSocket?: string;
}

/** The instance row's fields that shape the guest. */
export interface InstanceGuestFields {
  readonly uuid: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  /** The flavor's ephemeral disk size; 0 means no `disk.local`. */
  readonly ephemeralGb: number;
}

/** A volume attached to the instance, as its block-device mapping row records it. */
export interface VolumeMapping {
  readonly volumeId: string;
  /** The mountpoint asked for, `/dev/vdc` (its last component becomes the libvirt target). */
  readonly deviceName: string;
  readonly connectionInfo: ConnectionInfo;
}

/** What besides the database the guest definition needs: paths, host configuration, the connector. */
export interface DomainSpecContext {
  readonly name: string;
  readonly paths: InstancePaths;
  readonly virtType: 'kvm' | 'qemu';
  /** `[compute] serial_shell`. */
  readonly serialShell: boolean;
  /** Turns each mapping's `connection_info` into its disk source (the configured connector). */
  readonly connector: Pick<VolumeConnector, 'describe'>;
}

/** The guest of an instance, from its row and its volume mappings (Nova's `_get_guest_config`). */
export function buildDomainSpec(
  instance: InstanceGuestFields,
  volumes: readonly VolumeMapping[],
  context: DomainSpecContext,
): DomainSpec {
  const disks: GuestDisk[] = [
    { source: { type: 'file', path: context.paths.disk, format: 'qcow2' }, target: 'vda' },
  ];
  if (instance.ephemeralGb > 0) {
    disks.push({ source: { type: 'file', path: context.paths.diskLocal, format: 'qcow2' }, target: 'vdb' });
  }
  for (const volume of volumes) {
    disks.push({
      source: context.connector.describe(volume.connectionInfo).source,
      target: diskTarget(volume.deviceName),
      serial: volume.volumeId,
    });
  }
  const targets = disks.map((d) => d.target);
  const repeated = targets.find((t, i) => targets.indexOf(t) !== i);
  if (repeated) throw new InvalidInputError(`Two disks of ${context.name} want ${repeated}`);
  return {
    name: context.name,
    uuid: instance.uuid,
    virtType: context.virtType,
    memoryMb: instance.memoryMb,
    vcpus: instance.vcpus,
    disks,
    consoleLog: context.paths.consoleLog,
    ...(context.serialShell ? { shellSocket: context.paths.shellSocket } : {}),
  };
}

/** `/dev/vdc` or `vdc` → `vdc`; anything else is refused before it reaches libvirt. */
export function diskTarget(deviceName: string): string {
  const target = deviceName.replace(/^\/dev\//, '');
  if (!/^vd[a-z]{1,2}$/.test(target)) throw new InvalidInputError(`Bad device name ${deviceName}`);
  return target;
}
