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
