import { isIP } from 'node:net';
import { InvalidInputError } from '@basalt/errors';

// What may reach a command line or a config file: volume names, IQNs, initiator addresses, sizes.

/** What may reach a command line as a volume name: no path separators, no option-like leading dash. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const SAFE_IQN = /^iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9_.:-]+)?$/;
/** An initiator's name as open-iscsi and Nova give it: iqn., eui. or naa. form. */
const SAFE_INITIATOR =
  /^(iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9_.:-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;
/** Where a guest sees the disk, as Nova names it (`/dev/vdb`, `/dev/sdc`, `/dev/xvdd`). */
const SAFE_MOUNTPOINT = /^\/dev\/[a-z]{1,4}[a-z0-9]{0,8}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertSafeName(name: string): string {
  if (!SAFE_NAME.test(name) || name.includes('..'))
    throw new InvalidInputError(`unsafe volume name "${name}"`);
  return name;
}

export function assertIqn(iqn: string): string {
  if (!SAFE_IQN.test(iqn)) throw new InvalidInputError(`invalid iSCSI qualified name "${iqn}"`);
  return iqn;
}

/** A literal IPv4 or IPv6 address (no zone, no host name): tgt's ACL takes nothing else. */
export function assertAddress(address: string): string {
  if (address.length > 45 || isIP(address) === 0 || address.includes('%')) {
    throw new InvalidInputError(`invalid initiator address "${address.slice(0, 64)}"`);
  }
  return address;
}

export function assertInitiator(name: string): string {
  if (name.length > 223 || !SAFE_INITIATOR.test(name)) {
    throw new InvalidInputError(`invalid initiator name "${name.slice(0, 64)}"`);
  }
  return name;
}

export function assertMountpoint(mountpoint: string): string {
  if (!SAFE_MOUNTPOINT.test(mountpoint))
    throw new InvalidInputError(`invalid mountpoint "${mountpoint.slice(0, 64)}"`);
  return mountpoint;
}

export function assertUuid(id: string): string {
  if (!UUID.test(id)) throw new InvalidInputError(`invalid id "${id.slice(0, 64)}"`);
  return id;
}

export function assertSize(gigabytes: number): number {
  if (!Number.isSafeInteger(gigabytes) || gigabytes <= 0)
    throw new InvalidInputError(`invalid size ${gigabytes}`);
  return gigabytes;
}

export const GiB = 1024 ** 3;

/**
 * The name pattern of a name template (`volume_name_template`, `instance_name_template`): `%08x` the sequence number in hex, `%s` the id.
 * A name that fits and carries Basalt's marker is Basalt's to remove.
 */
export function templatePattern(template: string): RegExp {
  const parts = template.split(/(%0?\d*x|%s)/).map((part) => {
    if (/^%0?\d*x$/.test(part)) {
      const width = /\d+/.exec(part)?.[0];
      return width ? `[0-9a-f]{${Number(width)},}` : '[0-9a-f]+';
    }
    if (part === '%s') return '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}
