import { InvalidInputError } from '@basalt/errors';

// What may reach a command line or a config file: volume names, IQNs, initiator addresses, sizes.

/** What may reach a command line as a volume name: no path separators, no option-like leading dash. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const SAFE_IQN = /^iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9_.:-]+)?$/;
const SAFE_ADDRESS = /^[0-9A-Fa-f.:]{2,45}$/;

export function assertSafeName(name: string): string {
  if (!SAFE_NAME.test(name) || name.includes('..'))
    throw new InvalidInputError(`unsafe volume name "${name}"`);
  return name;
}

export function assertIqn(iqn: string): string {
  if (!SAFE_IQN.test(iqn)) throw new InvalidInputError(`invalid iSCSI qualified name "${iqn}"`);
  return iqn;
}

export function assertAddress(address: string): string {
  if (!SAFE_ADDRESS.test(address)) throw new InvalidInputError(`invalid initiator address "${address}"`);
  return address;
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
