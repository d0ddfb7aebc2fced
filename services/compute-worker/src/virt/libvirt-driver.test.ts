import { readFileSync } from 'node:fs';
import { InvalidInputError } from '@basalt/errors';
import { type Command, type CommandResult, ScriptedRunner } from '@basalt/exec';
import { DeviceDetachTimeoutError, DomainNotFoundError, HypervisorError } from './errors';
import { LibvirtDriver, parseDomblklist } from './libvirt-driver';
import { Virsh } from './virsh';

const URI = 'qemu:///system';
const HEADER = ' Type      Device   Target   Source\n------------------------------------------------\n';
const ROOT = ' file      disk     vda      /var/lib/basalt/instances/instance-00000001/disk\n';
const VOLUME = ' network   disk     vdc      iqn.2010-10.org.openstack:volume-00000001/1\n';
const diskXml = "<disk type='network' device='disk'>\n  <target dev='vdc' bus='virtio'/>\n</disk>";

const isDocument = (word: string) => word.includes('/basalt-virsh-');

/** Keeps the content of each file virsh is handed (domain and disk XML), read while it exists. */
class RecordingRunner extends ScriptedRunner {
  readonly documents: string[] = [];

  override run(command: Command): Promise<CommandResult> {
    for (const word of command.argv) if (isDocument(word)) this.documents.push(readFileSync(word, 'utf8'));
    return super.run(command);
  }
}

/** A domain in state `initial` that moves to `to` when virsh runs `command` (after `delayMs`, if given). */
function domainIn(initial: string, command: string, to: string, delayMs?: number): RecordingRunner {
  let state = initial;
  const move = () => {
    state = to;
  };
  return new RecordingRunner()
    .on(['virsh', '-c', URI, 'domstate'], () => ({ stdout: `${state}\n` }))
    .on(['virsh', '-c', URI, command], () => {
      if (delayMs === undefined) move();
      else setTimeout(move, delayMs);
      return {};
    });
}

function driver(runner: ScriptedRunner): LibvirtDriver {
  return new LibvirtDriver(new Virsh(runner, URI), { pollMs: 5 });
}

/** The virsh words after `virsh -c <uri>` of every command run. */
function virshCalls(runner: ScriptedRunner): string[] {
  return runner.argvs.map((argv) => {
    expect(argv.slice(0, 3)).toEqual(['virsh', '-c', URI]);
    return argv
      .slice(3)
      .map((word) => (isDocument(word) ? 'FILE' : word))
      .join(' ');
  });
}

describe('LibvirtDriver', () => {
  test('domblklist --details is parsed below its rule', () => {
    expect(parseDomblklist(HEADER + ROOT + VOLUME)).toEqual([
      {
        type: 'file',
        device: 'disk',
        target: 'vda',
        source: '/var/lib/basalt/instances/instance-00000001/disk',
      },
      {
        type: 'network',
        device: 'disk',
        target: 'vdc',
        source: 'iqn.2010-10.org.openstack:volume-00000001/1',
      },
    ]);
    expect(parseDomblklist(HEADER)).toEqual([]);
  });

  test('spawn defines from a file and starts a stopped domain; a running one is left running', async () => {
    const runner = domainIn('shut off', 'start', 'running');
    await driver(runner).spawn('instance-00000001', '<domain/>');
    await driver(runner).spawn('instance-00000001', '<domain/>');
    expect(virshCalls(runner)).toEqual([
      'define FILE',
      'domstate instance-00000001',
      'start instance-00000001',
      'define FILE',
      'domstate instance-00000001',
    ]);
    expect(runner.documents).toEqual(['<domain/>', '<domain/>']);
  });

  test('state of an undefined domain is undefined; destroy of one is harmless', async () => {
    const gone = { exitCode: 1, stderr: "error: failed to get domain 'instance-00000009'\n" };
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], gone)
      .on(['virsh', '-c', URI, 'destroy'], gone)
      .on(['virsh', '-c', URI, 'undefine'], gone);
    await expect(driver(runner).state('instance-00000009')).resolves.toBeUndefined();
    await expect(driver(runner).destroy('instance-00000009')).resolves.toBeUndefined();
    expect(virshCalls(runner)).toEqual([
      'domstate instance-00000009',
      'destroy instance-00000009',
      'undefine instance-00000009 --managed-save --snapshots-metadata --checkpoints-metadata --nvram',
    ]);
  });

  test('a failing virsh becomes a HypervisorError; a busy libvirtd is worth a retry, a bad XML is not', async () => {
    const busy = new RecordingRunner().on(['virsh', '-c', URI, 'start'], {
      exitCode: 1,
      stderr: 'error: Timed out during operation: cannot acquire state change lock',
    });
    busy.on(['virsh', '-c', URI, 'domstate'], { stdout: 'shut off\n' });
    const error = await driver(busy)
      .spawn('instance-00000001', '<domain/>')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HypervisorError);
    expect((error as HypervisorError).retryable).toBe(true);

    const bad = new RecordingRunner().on(['virsh', '-c', URI, 'define'], {
      exitCode: 1,
      stderr: 'error: XML error: missing domain type',
    });
    const refused = await driver(bad)
      .spawn('instance-00000001', '<domain/>')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HypervisorError);
    expect((refused as HypervisorError).retryable).toBe(false);
    expect((refused as Error).message).toContain('missing domain type');
  });

  test('names that are not domain names never reach virsh', async () => {
    const runner = new RecordingRunner();
    await expect(driver(runner).state('x; rm -rf /')).rejects.toThrow(InvalidInputError);
    await expect(driver(runner).detachDisk('instance-00000001', 'sda', diskXml, 100)).rejects.toThrow(
      InvalidInputError,
    );
    expect(runner.calls).toHaveLength(0);
  });

  test('attach to a running domain is one live and persistent hot-plug; a disk already there is not attached twice', async () => {
    let live = false;
    let persistent = false;
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], (argv) => ({
        stdout: HEADER + ROOT + ((argv.includes('--inactive') ? persistent : live) ? VOLUME : ''),
      }))
      .on(['virsh', '-c', URI, 'attach-device'], (argv) => {
        if (argv.includes('--live') && live)
          return {
            exitCode: 1,
            stderr: 'error: Requested operation is not valid: target vdc already exists',
          };
        live ||= argv.includes('--live');
        persistent ||= argv.includes('--config');
        return {};
      });
    await driver(runner).attachDisk('instance-00000001', diskXml);
    expect(virshCalls(runner)).toEqual(['attach-device instance-00000001 FILE --live --config']);
    await driver(runner).attachDisk('instance-00000001', diskXml);
    expect(virshCalls(runner).filter((c) => c.startsWith('attach-device'))).toEqual([
      'attach-device instance-00000001 FILE --live --config',
      'attach-device instance-00000001 FILE --live --config',
    ]);
    // plugged live only (a definition lost since): only the definition is completed
    persistent = false;
    await driver(runner).attachDisk('instance-00000001', diskXml);
    expect(virshCalls(runner).at(-1)).toBe('attach-device instance-00000001 FILE --config');
    expect(persistent).toBe(true);
    expect(new Set(runner.documents)).toEqual(new Set([diskXml]));
  });

  test('attach to a stopped domain changes only its definition', async () => {
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'shut off\n' })
      .on(['virsh', '-c', URI, 'domblklist'], { stdout: HEADER + ROOT })
      .on(['virsh', '-c', URI, 'attach-device'], (argv) =>
        argv.includes('--live')
          ? { exitCode: 1, stderr: 'error: Requested operation is not valid: domain is not running' }
          : {},
      );
    await driver(runner).attachDisk('instance-00000001', diskXml);
    expect(runner.argvs.filter((a) => a[3] === 'attach-device').map((a) => a.slice(6))).toEqual([
      ['--live', '--config'],
      ['--config'],
    ]);
  });

  test('a hot-plug libvirt refuses fails with its reason once the domain is looked at', async () => {
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], { stdout: HEADER + ROOT })
      .on(['virsh', '-c', URI, 'attach-device'], {
        exitCode: 1,
        stderr: 'error: internal error: unable to execute QEMU command: iSCSI login failed',
      });
    await expect(driver(runner).attachDisk('instance-00000001', diskXml)).rejects.toThrow(
      'virsh attach-device failed: error: internal error: unable to execute QEMU command: iSCSI login failed',
    );
    expect(virshCalls(runner).filter((c) => c.startsWith('attach-device'))).toHaveLength(2);
  });

  test('detach waits until domblklist no longer lists the disk, though virsh said done at once', async () => {
    let lookupsLeft = 3;
    let persistent = true;
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], (argv) => {
        if (argv.includes('--inactive')) return { stdout: HEADER + ROOT + (persistent ? VOLUME : '') };
        return { stdout: HEADER + ROOT + (lookupsLeft-- > 0 ? VOLUME : '') };
      })
      .on(['virsh', '-c', URI, 'detach-device'], () => {
        persistent = false;
        return { stdout: 'Device detached successfully\n' };
      });
    await driver(runner).detachDisk('instance-00000001', 'vdc', diskXml, 5000);
    expect(lookupsLeft).toBeLessThan(0);
    expect(virshCalls(runner).filter((c) => c.startsWith('detach-device'))).toEqual([
      'detach-device instance-00000001 FILE --live --config',
    ]);
    expect(runner.documents).toEqual([diskXml]);
  });

  test('a guest that never lets go gives a retryable DeviceDetachTimeoutError; the repeat only re-asks the live domain', async () => {
    let persistent = true;
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], (argv) => ({
        stdout: HEADER + ROOT + (argv.includes('--inactive') && !persistent ? '' : VOLUME),
      }))
      .on(['virsh', '-c', URI, 'detach-device'], (argv) => {
        if (argv.includes('--config') && !persistent)
          return { exitCode: 1, stderr: 'error: device not found: no target device vdc' };
        persistent = false;
        return {};
      });
    const error = await driver(runner)
      .detachDisk('instance-00000001', 'vdc', diskXml, 50)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceDetachTimeoutError);
    expect((error as DeviceDetachTimeoutError).retryable).toBe(true);
    await driver(runner)
      .detachDisk('instance-00000001', 'vdc', diskXml, 20)
      .catch(() => undefined);
    const detaches = runner.argvs.filter((a) => a[3] === 'detach-device').map((a) => a.slice(6));
    expect(detaches).toEqual([['--live', '--config'], ['--live', '--config'], ['--live']]);
  });

  test('a guest that ignored the unplug (still booting) is asked again, evenly over the timeout, until it lets go', async () => {
    let unplugs = 0;
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      // the guest honours only the third request
      .on(['virsh', '-c', URI, 'domblklist'], () => ({
        stdout: HEADER + ROOT + (unplugs >= 3 ? '' : VOLUME),
      }))
      .on(['virsh', '-c', URI, 'detach-device'], () => {
        unplugs++;
        return {};
      });
    const retrying = new LibvirtDriver(new Virsh(runner, URI), { pollMs: 5, detachAttempts: 4 });
    await retrying.detachDisk('instance-00000001', 'vdc', diskXml, 400);
    expect(virshCalls(runner).filter((c) => c.startsWith('detach-device'))).toEqual([
      'detach-device instance-00000001 FILE --live --config',
      'detach-device instance-00000001 FILE --live',
      'detach-device instance-00000001 FILE --live',
    ]);
  });

  test('the retries are bounded: past the last request and the timeout, a fault naming how many were sent', async () => {
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], { stdout: HEADER + ROOT + VOLUME })
      .on(['virsh', '-c', URI, 'detach-device'], {});
    const retrying = new LibvirtDriver(new Virsh(runner, URI), { pollMs: 5, detachAttempts: 3 });
    await expect(retrying.detachDisk('instance-00000001', 'vdc', diskXml, 90)).rejects.toThrow(
      'Disk vdc of instance-00000001 was still attached after 0.09 s and 3 unplug requests',
    );
    expect(virshCalls(runner).filter((c) => c.startsWith('detach-device'))).toHaveLength(3);
  });

  test('detach of a disk that is gone already looks, then unplugs nothing more', async () => {
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', URI, 'domblklist'], { stdout: HEADER + ROOT })
      .on(['virsh', '-c', URI, 'detach-device'], {
        exitCode: 1,
        stderr: 'error: device not found: no target device vdc',
      });
    await driver(runner).detachDisk('instance-00000001', 'vdc', diskXml, 50);
    expect(virshCalls(runner)).toEqual([
      'detach-device instance-00000001 FILE --live --config',
      'domstate instance-00000001',
      'domblklist instance-00000001 --details',
      'domblklist instance-00000001 --details --inactive',
    ]);
  });

  test('detach from a domain that is gone is DomainNotFoundError', async () => {
    const gone = { exitCode: 1, stderr: "error: failed to get domain 'instance-00000001'" };
    const runner = new RecordingRunner()
      .on(['virsh', '-c', URI, 'domstate'], gone)
      .on(['virsh', '-c', URI, 'detach-device'], gone);
    await expect(driver(runner).detachDisk('instance-00000001', 'vdc', diskXml, 50)).rejects.toThrow(
      DomainNotFoundError,
    );
  });

  test('soft reboot: ACPI shutdown, wait for shut off, start; a guest that ignores ACPI gives false', async () => {
    const runner = domainIn('running', 'shutdown', 'shut off', 20);
    await expect(driver(runner).softReboot('instance-00000001', 2000)).resolves.toBe(true);
    expect(virshCalls(runner).filter((c) => !c.startsWith('domstate'))).toEqual([
      'shutdown instance-00000001 --mode acpi',
      'start instance-00000001',
    ]);

    const deaf = new RecordingRunner().on(['virsh', '-c', URI, 'domstate'], { stdout: 'running\n' });
    await expect(driver(deaf).softReboot('instance-00000001', 30)).resolves.toBe(false);
    expect(deaf.argvs.some((a) => a[3] === 'start')).toBe(false);
  });

  test('hard reboot pulls the plug, redefines from the rebuilt XML and starts', async () => {
    const runner = domainIn('running', 'destroy', 'shut off');
    await driver(runner).hardReboot('instance-00000001', '<domain>rebuilt</domain>');
    expect(virshCalls(runner)).toEqual([
      'destroy instance-00000001',
      'define FILE',
      'domstate instance-00000001',
      'start instance-00000001',
    ]);
    expect(runner.documents).toEqual(['<domain>rebuilt</domain>']);
  });

  test('disks of a domain that is not defined: DomainNotFoundError', async () => {
    const runner = new RecordingRunner().on(['virsh', '-c', URI, 'domblklist'], {
      exitCode: 1,
      stderr: "error: failed to get domain 'instance-00000002'",
    });
    await expect(driver(runner).blockDevices('instance-00000002')).rejects.toThrow(DomainNotFoundError);
  });
});
