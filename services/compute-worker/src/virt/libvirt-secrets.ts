import { createHash } from 'node:crypto';
import { InvalidInputError } from '@basalt/errors';
import { HypervisorError } from './errors';
import type { SecretInventory, SecretStore } from './hypervisor';
import type { Virsh } from './virsh';

const USAGE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A failure no command may pass off as benign. */
const NEVER = /(?!)/;

/** virsh's words for a secret that is not there. */
const NO_SECRET = /Secret not found|failed to get secret/i;

/**
 * libvirt's `iscsi` secrets, by usage name. Each is defined under a UUID derived from its usage,
 * so defining, setting and removing it need no listing first (each `virsh` run is a process and
 * a libvirtd connection). A value reaches libvirt only through a file in a private directory that
 * is removed at once (`Virsh.withFile`): never on a command line (ps) nor in a log.
 */
export class LibvirtSecrets implements SecretStore, SecretInventory {
  constructor(private readonly virsh: Virsh) {}

  async ensure(usage: string, value: string): Promise<string> {
    checkUsage(usage);
    if (value.length === 0) throw new InvalidInputError(`Empty secret value for ${usage}`);
    const uuid = secretUuid(usage);
    // the usual case in one run: the secret defined already (`define`, while the volume host was
    // asked for the connection) takes its value; anything else is sorted out step by step
    if (await this.setValue(uuid, value, /./)) return uuid;
    const defined = await this.define(usage);
    await this.setValue(defined, value);
    return defined;
  }

  async remove(usage: string): Promise<void> {
    checkUsage(usage);
    const removed = await this.virsh.run(['secret-undefine', secretUuid(usage)], { benign: NO_SECRET });
    if (removed !== undefined) return;
    // one of this usage under another UUID (defined before secrets were named by their usage)
    const uuid = await this.lookup(usage);
    if (uuid === undefined) return;
    // removed by someone else between the lookup and now is fine too
    await this.virsh.run(['secret-undefine', uuid], { benign: NO_SECRET });
  }

  async lookup(usage: string): Promise<string | undefined> {
    checkUsage(usage);
    return (await this.list()).find((s) => s.usage === usage)?.uuid;
  }

  async usages(): Promise<readonly string[]> {
    return (await this.list()).map((s) => s.usage);
  }

  /** Every `iscsi` secret of `virsh secret-list`. */
  private async list(): Promise<Array<{ uuid: string; usage: string }>> {
    const { stdout } = await this.virsh.run(['secret-list']);
    return stdout.split('\n').flatMap((line) => {
      const [uuid, type, ...rest] = line.trim().split(/\s+/);
      return uuid !== undefined && UUID.test(uuid) && type === 'iscsi'
        ? [{ uuid, usage: rest.join(' ') }]
        : [];
    });
  }

  async define(usage: string): Promise<string> {
    checkUsage(usage);
    const uuid = secretUuid(usage);
    // defining it again changes nothing; one of this usage under another UUID is used as it is
    const result = await this.virsh.withFile(definition(usage, uuid), (path) =>
      this.virsh.run(['secret-define', path], { benign: /already defined for use/ }),
    );
    if (result !== undefined) return uuid;
    const existing = await this.lookup(usage);
    if (existing === undefined)
      throw new HypervisorError(`virsh secret-define found ${usage} taken, then gone`);
    return existing;
  }

  /**
   * Sets the value through a private file, removed once virsh has read it; false when the failure
   * matched `benign` (else it is thrown).
   */
  private async setValue(uuid: string, value: string, benign = NEVER): Promise<boolean> {
    const result = await this.virsh.withFile(value, (file) =>
      this.virsh.run(['secret-set-value', uuid, '--file', file, '--plain'], { secrets: [value], benign }),
    );
    return result !== undefined;
  }
}

/** The UUID a secret of `usage` is defined under: name-based (RFC 4122 version 5 layout, SHA-1). */
export function secretUuid(usage: string): string {
  const hash = createHash('sha1').update(`basalt-libvirt-secret:${usage}`).digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function definition(usage: string, uuid: string): string {
  return `<secret ephemeral='no' private='yes'>\n  <uuid>${uuid}</uuid>\n  <usage type='iscsi'>\n    <target>${usage}</target>\n  </usage>\n</secret>\n`;
}

function checkUsage(usage: string): void {
  if (!USAGE.test(usage)) throw new InvalidInputError(`Bad secret usage name ${usage}`);
}
