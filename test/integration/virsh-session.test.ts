import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CommandError } from '@basalt/exec';
import { recordSpans } from '@basalt/trace';
import { HypervisorError } from '../../services/compute-worker/src/virt/errors';
import { LibvirtSecrets } from '../../services/compute-worker/src/virt/libvirt-secrets';
import { Virsh } from '../../services/compute-worker/src/virt/virsh';
import { VirshSessions } from '../../services/compute-worker/src/virt/virsh-session';
import { LIBVIRT_URI, LibvirtFixture } from '../support/libvirt';
import { tempDir } from '../support/processes';
import { quietLogger, waitFor } from '../support/rpc';

const run = promisify(execFile);
const LIBVIRTD_SOCKET = '/var/run/libvirt/libvirt-sock';

/** A socket in front of libvirtd's: `restart()` drops every connection, as a libvirtd restart does. */
class LibvirtdProxy {
  private readonly open = new Set<Socket>();
  private server: Server | undefined;
  private readonly dir = tempDir('basalt-vs');
  readonly path = join(this.dir, 'libvirt-sock');

  get uri(): string {
    return `${LIBVIRT_URI}?socket=${this.path}`;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const daemon = createConnection(LIBVIRTD_SOCKET);
      for (const [a, b] of [
        [client, daemon],
        [daemon, client],
      ] as const) {
        this.open.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.open.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(this.path, resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.open) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Stops and removes the socket's directory: the end of the proxy. */
  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** How many connections libvirtd has through the proxy: one per session. */
  get connections(): number {
    return this.open.size / 2;
  }
}

describe('VirshSessions on the machine libvirtd', () => {
  let libvirt: LibvirtFixture;
  const sessions = new VirshSessions(quietLogger(), LIBVIRT_URI);
  const virsh = new Virsh(sessions, LIBVIRT_URI);

  beforeAll(async () => {
    libvirt = await LibvirtFixture.start();
  });
  afterAll(async () => {
    sessions.close();
    await libvirt?.cleanUp();
  });

  test('a command answers what a virsh process answers, and is an exec span with its line', async () => {
    const recorder = recordSpans();
    const alone = await run('virsh', ['-c', LIBVIRT_URI, 'version', '--daemon']);
    expect((await virsh.run(['version', '--daemon'])).stdout).toBe(alone.stdout);
    // longer than a terminal's line: the echo of the line is no part of the answer
    const name = `${libvirt.prefix}-${'x'.repeat(100)}`;
    const error = await virsh.run(['domstate', name]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HypervisorError);
    expect((error as HypervisorError).message).toBe(
      `virsh domstate failed: error: failed to get domain '${name}'`,
    );
    const spans = recorder.spans().filter((s) => s.name === 'exec virsh');
    recorder.stop();
    expect(spans.map((s) => s.attributes['process.command_args'])).toEqual([
      ['virsh', '-c', LIBVIRT_URI, 'version --daemon'],
      ['virsh', '-c', LIBVIRT_URI, `domstate ${name}`],
    ]);
    expect(spans[1]?.attributes['process.exit.code']).toBe(1);
    // the session went on after the failure
    expect((await virsh.run(['version', '--daemon'])).stdout).toBe(alone.stdout);
  });

  test('a secret is set through a session from its file: its value in no span and no argv', async () => {
    const recorder = recordSpans();
    const usage = `basalt-volume-${libvirt.prefix}-${randomUUID()}`;
    libvirt.trackSecret(usage);
    const value = `Pw${randomUUID().replace(/-/g, '')}`;
    const uuid = await new LibvirtSecrets(virsh).ensure(usage, value);
    // private, so unreadable: that its value is right a guest's CHAP login shows (test/e2e/compute)
    expect(await libvirt.secrets(usage)).toEqual([uuid]);
    const spans = JSON.stringify(recorder.spans().map((s) => [s.name, s.attributes, s.status]));
    recorder.stop();
    expect(spans).toContain('secret-set-value');
    expect(spans).not.toContain(value);
    await new LibvirtSecrets(virsh).remove(usage);
    expect(await libvirt.secrets(usage)).toEqual([]);
  });

  test('a command stuck past its timeout ends its session; the next command runs in a fresh one', async () => {
    const stuck = await sessions
      .run({ argv: ['virsh', '-c', LIBVIRT_URI, 'event --all --timeout 30'], timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(stuck).toBeInstanceOf(CommandError);
    expect((stuck as CommandError).retryable).toBe(true);
    expect((stuck as CommandError).message).toContain('timed out after 300 ms');
    expect((await virsh.run(['version', '--daemon'])).exitCode).toBe(0);
  });

  test('only the lines virsh would parse for this URI are taken', async () => {
    for (const argv of [
      ['virsh', '-c', 'qemu:///session', 'list'],
      ['virsh', '-c', LIBVIRT_URI, 'list', '--all'],
      ['virsh', '-c', LIBVIRT_URI, 'list\nversion'],
    ] as const) {
      await expect(sessions.run({ argv })).rejects.toThrow('is not one virsh line for this session');
    }
  });
});

describe('VirshSessions when libvirtd restarts', () => {
  const proxy = new LibvirtdProxy();
  let sessions: VirshSessions;
  let virsh: Virsh;

  beforeAll(async () => {
    await proxy.start();
    sessions = new VirshSessions(quietLogger(), proxy.uri);
    virsh = new Virsh(sessions, proxy.uri);
  });
  afterAll(async () => {
    sessions.close();
    await proxy.remove();
  });

  test('connections dropped while idle: the session ends, the next command reconnects', async () => {
    expect((await virsh.run(['version', '--daemon'])).exitCode).toBe(0);
    expect(proxy.connections).toBe(1);
    await proxy.stop();
    // libvirtd down: a passing failure, as a virsh process would have it
    const down = await virsh.run(['version', '--daemon']).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(HypervisorError);
    expect((down as HypervisorError).retryable).toBe(true);
    await proxy.start();
    expect((await virsh.run(['version', '--daemon'])).exitCode).toBe(0);
    expect(proxy.connections).toBe(1);
  });

  test('connections dropped under a session that is up: the next command runs anyway', async () => {
    expect((await virsh.run(['version', '--daemon'])).exitCode).toBe(0);
    await proxy.stop();
    await proxy.start();
    // virsh tells of the lost connection by itself, the session ends at that
    await waitFor(() => proxy.connections === 0, 'the old connection to go');
    expect((await virsh.run(['version', '--daemon'])).exitCode).toBe(0);
  });
});
