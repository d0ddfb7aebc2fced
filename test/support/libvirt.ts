import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './processes';

const run = promisify(execFile);
export const LIBVIRT_URI = 'qemu:///system';

const virsh = (...args: string[]) => run('virsh', ['-c', LIBVIRT_URI, ...args], { timeout: 60_000 });

/**
 * The machine's libvirtd (started as `./stack.sh libvirt` starts it when it is not running), and
 * a name prefix of this test's own: every domain it defines is named `<prefix>-...`, and
 * `cleanUp()` destroys and undefines those and undefines the secrets registered with `track`,
 * whatever state a failed test left them in.
 */
export class LibvirtFixture {
  private readonly secretUsages = new Set<string>();

  private constructor(readonly prefix: string) {}

  static async start(): Promise<LibvirtFixture> {
    await run(join(ROOT, 'stack.sh'), ['libvirt'], { timeout: 120_000 });
    return new LibvirtFixture(`bt${randomBytes(3).toString('hex')}`);
  }

  /** A secret usage name to undefine in `cleanUp`. */
  trackSecret(usage: string): void {
    this.secretUsages.add(usage);
  }

  async domains(): Promise<string[]> {
    const { stdout } = await virsh('list', '--all', '--name');
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((name) => name.startsWith(`${this.prefix}-`));
  }

  /** UUIDs of the secrets with this usage name. */
  async secrets(usage: string): Promise<string[]> {
    const { stdout } = await virsh('secret-list');
    return stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, type, name]) => type === 'iscsi' && name === usage)
      .map(([uuid]) => uuid ?? '');
  }

  async cleanUp(): Promise<void> {
    // a libvirtd busy with a dying QEMU may time a command out: go round again for what is left
    for (let round = 0; round < 3; round++) {
      const left = await this.domains();
      if (left.length === 0) break;
      for (const name of left) {
        await virsh('destroy', name).catch(() => undefined);
        await virsh('undefine', name, '--nvram').catch(() => undefined);
      }
    }
    for (const usage of this.secretUsages) {
      for (const uuid of await this.secrets(usage))
        await virsh('secret-undefine', uuid).catch(() => undefined);
    }
  }
}
