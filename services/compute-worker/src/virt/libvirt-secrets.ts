import { InvalidInputError } from '@basalt/errors';
import { HypervisorError } from './errors';
import type { SecretStore } from './hypervisor';
import type { Virsh } from './virsh';

const USAGE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * libvirt's `iscsi` secrets, found by usage name. A value reaches libvirt only through a file in
 * a private directory that is removed at once (`Virsh.withFile`): never on a command line (ps)
 * nor in a log.
 */
export class LibvirtSecrets implements SecretStore {
  constructor(private readonly virsh: Virsh) {}

  async ensure(usage: string, value: string): Promise<string> {
    checkUsage(usage);
    if (value.length === 0) throw new InvalidInputError(`Empty secret value for ${usage}`);
    const uuid = (await this.lookup(usage)) ?? (await this.define(usage));
    await this.virsh.withFile(value, (file) =>
      this.virsh.run(['secret-set-value', uuid, '--file', file, '--plain'], { secrets: [value] }),
    );
    return uuid;
  }

  async remove(usage: string): Promise<void> {
    const uuid = await this.lookup(usage);
    if (uuid === undefined) return;
    // removed by someone else between the lookup and now is fine too
    await this.virsh.run(['secret-undefine', uuid], { benign: /Secret not found|failed to get secret/i });
  }

  async lookup(usage: string): Promise<string | undefined> {
    checkUsage(usage);
    const { stdout } = await this.virsh.run(['secret-list']);
    for (const line of stdout.split('\n')) {
      const [uuid, type, ...rest] = line.trim().split(/\s+/);
      if (uuid !== undefined && UUID.test(uuid) && type === 'iscsi' && rest.join(' ') === usage) return uuid;
    }
    return undefined;
  }

  private async define(usage: string): Promise<string> {
    const xml = `<secret ephemeral='no' private='yes'>\n  <usage type='iscsi'>\n    <target>${usage}</target>\n  </usage>\n</secret>\n`;
    // a concurrent ensure of the same usage may define it first: then use that one
    const result = await this.virsh.withFile(xml, (path) =>
      this.virsh.run(['secret-define', path], { benign: /already defined for use/ }),
    );
    if (result === undefined) {
      const uuid = await this.lookup(usage);
      if (uuid !== undefined) return uuid;
    }
    const stdout = result?.stdout ?? '';
    const uuid = /Secret ([0-9a-f-]{36}) created/.exec(stdout)?.[1];
    if (uuid === undefined) throw new HypervisorError(`virsh secret-define said "${stdout.trim()}"`);
    return uuid;
  }
}

function checkUsage(usage: string): void {
  if (!USAGE.test(usage)) throw new InvalidInputError(`Bad secret usage name ${usage}`);
}
