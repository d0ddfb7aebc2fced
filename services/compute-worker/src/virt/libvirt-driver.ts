import { InvalidInputError } from '@basalt/errors';
import { pollFor } from '../poll';
import { DeviceDetachTimeoutError, DomainNotFoundError, HypervisorError } from './errors';
import type { BlockDevice, DomainState, Hypervisor } from './hypervisor';
import type { Virsh } from './virsh';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const TARGET = /^vd[a-z]{1,2}$/;
const STATES: readonly DomainState[] = [
  'running',
  'idle',
  'paused',
  'in shutdown',
  'shut off',
  'crashed',
  'pmsuspended',
];
/**
 * Pauses between looks for a detached disk: from the first, doubling up to the last (a look is a
 * line to a virsh session, a few milliseconds, so they stay short).
 */
const DETACH_POLL_MS = { first: 10, last: 20 } as const;
/** virsh's words for a domain that does not exist. */
const NO_DOMAIN = /failed to get domain|Domain not found|no domain with matching name/i;

/** Nova's libvirt driver over `virsh -c <uri>`: every domain operation the compute manager needs. */
export class LibvirtDriver implements Hypervisor {
  /**
   * `pollMs`: how often state is polled while waiting for a shutdown; a detach looks at least as
   * often. `detachAttempts`: how many unplug requests a detach sends within its timeout.
   */
  constructor(
    private readonly virsh: Virsh,
    private readonly options: { readonly pollMs?: number; readonly detachAttempts?: number } = {},
  ) {}

  private get pollMs(): number {
    return this.options.pollMs ?? 200;
  }

  async checkForSetup(): Promise<void> {
    await this.virsh.run(['version']).catch((error: unknown) => {
      throw new HypervisorError(
        `libvirtd does not answer at ${this.virsh.uri}: start it (./stack.sh deps does) or set [compute] libvirt_uri. ${
          error instanceof Error ? error.message : String(error)
        }`,
        { retryable: true },
      );
    });
  }

  async spawn(name: string, xml: string): Promise<void> {
    checkName(name);
    await this.virsh.withFile(xml, (path) => this.virsh.run(['define', path]));
    const state = await this.state(name);
    if (state === 'running' || state === 'idle') return;
    if (state === 'paused') await this.virsh.run(['resume', name]);
    else await this.virsh.run(['start', name]);
  }

  async state(name: string): Promise<DomainState | undefined> {
    checkName(name);
    const result = await this.virsh.run(['domstate', name], { benign: NO_DOMAIN });
    if (result === undefined) return undefined;
    const state = result.stdout.trim() as DomainState;
    if (!STATES.includes(state)) throw new HypervisorError(`virsh domstate ${name} said "${state}"`);
    return state;
  }

  async destroy(name: string): Promise<void> {
    await this.powerOff(name);
    // nvram and managed-save images belong to the domain: they go with it
    await this.virsh.run(
      ['undefine', name, '--managed-save', '--snapshots-metadata', '--checkpoints-metadata', '--nvram'],
      { benign: NO_DOMAIN },
    );
  }

  async softReboot(name: string, timeoutMs: number): Promise<boolean> {
    const state = await this.state(name);
    if (state === undefined) throw new DomainNotFoundError(`Domain ${name} is not defined`);
    if (state === 'running' || state === 'idle') {
      await this.virsh.run(['shutdown', name, '--mode', 'acpi']);
      const off = await pollFor(
        async () => ((await this.state(name)) === 'shut off' ? true : undefined),
        timeoutMs,
        this.pollMs,
      );
      if (off === undefined) return false;
    }
    await this.virsh.run(['start', name]);
    return true;
  }

  async hardReboot(name: string, xml: string): Promise<void> {
    await this.powerOff(name);
    await this.spawn(name, xml);
  }

  async blockDevices(name: string): Promise<readonly BlockDevice[]> {
    return this.domblklist(name, false);
  }

  async attachDisk(name: string, diskXml: string): Promise<void> {
    const target = targetOf(diskXml);
    checkName(name);
    await this.virsh.withFile(diskXml, async (path) => {
      // the usual case, a running guest without the disk, in one run: anything else (not running,
      // plugged already, half plugged, or a real failure) is sorted out by looking, then plugging
      // only where the disk is missing
      const plugged = await this.virsh.run(['attach-device', name, path, '--live', '--config'], {
        benign: /./,
      });
      if (plugged !== undefined) return;
      const [running, live, persistent] = await this.presence(name, target);
      const flags = [...(running && !live ? ['--live'] : []), ...(persistent ? [] : ['--config'])];
      if (flags.length > 0) await this.virsh.run(['attach-device', name, path, ...flags]);
    });
  }

  async detachDisk(name: string, target: string, diskXml: string, timeoutMs: number): Promise<void> {
    if (!TARGET.test(target)) throw new InvalidInputError(`Bad disk target ${target}`);
    checkName(name);
    const attempts = this.options.detachAttempts ?? 1;
    await this.virsh.withFile(diskXml, async (path) => {
      // the usual case, the disk in the running guest and its definition, in one run; else look
      // and unplug only what is there
      const unplugged = await this.virsh.run(['detach-device', name, path, '--live', '--config'], {
        benign: /./,
      });
      if (unplugged === undefined) {
        const [, inGuest, persistent] = await this.presence(name, target);
        const flags = [...(inGuest ? ['--live'] : []), ...(persistent ? ['--config'] : [])];
        if (flags.length > 0) await this.virsh.run(['detach-device', name, path, ...flags]);
        if (!inGuest) return;
      }
      // virsh returns before the guest has released the disk: it is gone when domblklist says so,
      // often at once, so the first looks come quickly; a guest that ignored the request (its
      // kernel not up yet) is asked again, evenly over the timeout
      const spacing = timeoutMs / attempts;
      let asked = 1;
      const started = performance.now();
      const gone = await pollFor(
        async () => {
          if (!(await this.has(name, target, false))) return true;
          if (asked < attempts && performance.now() - started >= asked * spacing) {
            asked++;
            await this.virsh.run(['detach-device', name, path, '--live'], { benign: /./ });
          }
          return undefined;
        },
        timeoutMs,
        Math.min(this.pollMs, DETACH_POLL_MS.last),
        DETACH_POLL_MS.first,
      );
      if (gone === undefined) throw DeviceDetachTimeoutError.of(name, target, timeoutMs / 1000, asked);
    });
  }

  async resizeDisk(name: string, target: string, bytes: number): Promise<boolean> {
    if (!TARGET.test(target)) throw new InvalidInputError(`Bad disk target ${target}`);
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidInputError(`Bad disk size ${bytes}`);
    if (!(await this.isRunning(name))) return false;
    await this.virsh.run(['blockresize', name, target, '--size', `${bytes}B`]);
    return true;
  }

  async listDomains(): Promise<readonly string[]> {
    const result = await this.virsh.run(['list', '--all', '--name']);
    return result.stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  }

  async definition(name: string): Promise<string | undefined> {
    checkName(name);
    return (await this.virsh.run(['dumpxml', name, '--inactive'], { benign: NO_DOMAIN }))?.stdout;
  }

  /** Whether the domain runs, and whether the disk is in the live domain and in its persistent definition. */
  private async presence(name: string, target: string): Promise<[boolean, boolean, boolean]> {
    const running = await this.isRunning(name);
    return [running, running && (await this.has(name, target, false)), await this.has(name, target, true)];
  }

  private async has(name: string, target: string, inactive: boolean): Promise<boolean> {
    return (await this.domblklist(name, inactive)).some((d) => d.target === target);
  }

  private async isRunning(name: string): Promise<boolean> {
    const state = await this.state(name);
    if (state === undefined) throw new DomainNotFoundError(`Domain ${name} is not defined`);
    return state !== 'shut off' && state !== 'crashed';
  }

  private async domblklist(name: string, inactive: boolean): Promise<readonly BlockDevice[]> {
    checkName(name);
    const argv = ['domblklist', name, '--details', ...(inactive ? ['--inactive'] : [])];
    const result = await this.virsh.run(argv, { benign: NO_DOMAIN });
    if (result === undefined) throw new DomainNotFoundError(`Domain ${name} is not defined`);
    return parseDomblklist(result.stdout);
  }

  /** Stops the domain at once (pulls the plug); not running or not defined is fine. */
  private async powerOff(name: string): Promise<void> {
    checkName(name);
    await this.virsh.run(['destroy', name], {
      benign: /domain is not running|failed to get domain|Domain not found/i,
    });
  }
}

/** The rows of `virsh domblklist --details`, below its header and dashes. */
export function parseDomblklist(stdout: string): BlockDevice[] {
  const lines = stdout.split('\n');
  const rule = lines.findIndex((line) => /^-{5,}/.test(line.trim()));
  return lines
    .slice(rule + 1)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [type = '', device = '', target = '', ...source] = line.split(/\s+/);
      return { type, device, target, source: source.join(' ') };
    });
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new InvalidInputError(`Bad domain name ${name}`);
}

function targetOf(diskXml: string): string {
  const target = /<target\s+dev='([^']+)'/.exec(diskXml)?.[1];
  if (target === undefined || !TARGET.test(target))
    throw new InvalidInputError('The disk XML names no vdX target');
  return target;
}
