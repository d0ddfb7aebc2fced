import { readFileSync } from 'node:fs';

/**
 * This host's initiator IQN: `[compute] initiator_iqn`, else open-iscsi's own name
 * (/etc/iscsi/initiatorname.iscsi, what the kernel initiator logs in with), else one made from
 * the host name.
 */
export function initiatorName(
  configured: string,
  host: string,
  file = '/etc/iscsi/initiatorname.iscsi',
): string {
  if (configured !== '') return configured;
  try {
    const name = /^InitiatorName=(\S+)$/m.exec(readFileSync(file, 'utf8'))?.[1];
    if (name !== undefined) return name;
  } catch {
    // no open-iscsi on this host
  }
  return `iqn.2010-10.org.basalt:${host.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`;
}
