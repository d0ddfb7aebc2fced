import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A tgtd of the test's own: its own control number (`tgtadm -C n`) and its own portal on
 * 127.0.0.1, so runs never collide with each other or with a system tgtd. tgtd ignores SIGTERM;
 * `stop()` uses the supported sequence (offline, delete every target, delete the system).
 */
export class TgtdFixture {
  private child?: ChildProcess;

  private constructor(
    readonly controlPort: number,
    readonly port: number,
  ) {}

  static async start(): Promise<TgtdFixture> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const n = 100 + Math.floor(Math.random() * 800);
      const port = 21000 + n;
      if (existsSync(`/var/run/tgtd/socket.${n}`) && (await TgtdFixture.answers(n))) continue;
      if (!(await portFree(port))) continue;
      const fixture = new TgtdFixture(n, port);
      await fixture.launch();
      return fixture;
    }
    throw new Error('no free tgtd control number and port');
  }

  private static async answers(n: number): Promise<boolean> {
    return run('tgtadm', ['-C', String(n), '--op', 'show', '--mode', 'sys']).then(
      () => true,
      () => false,
    );
  }

  private async launch(): Promise<void> {
    this.child = spawn(
      'tgtd',
      ['-f', '-C', String(this.controlPort), '--iscsi', `portal=127.0.0.1:${this.port}`],
      {
        stdio: 'ignore',
        detached: true,
      },
    );
    for (let i = 0; i < 100; i++) {
      if (await TgtdFixture.answers(this.controlPort)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`tgtd -C ${this.controlPort} did not come up`);
  }

  /** Simulates a crash: tgtd dies with every target, then a fresh one starts on the same number and portal. */
  async crashAndRestart(): Promise<void> {
    this.child?.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    await this.launch();
  }

  targets(): Promise<string> {
    return this.show('target');
  }

  accounts(): Promise<string> {
    return this.show('account');
  }

  private async show(mode: 'target' | 'account'): Promise<string> {
    const c = String(this.controlPort);
    const { stdout } = await run('tgtadm', ['-C', c, '--lld', 'iscsi', '--op', 'show', '--mode', mode]);
    return stdout;
  }

  async stop(): Promise<void> {
    const c = String(this.controlPort);
    await run('tgtadm', [
      '-C',
      c,
      '--op',
      'update',
      '--mode',
      'sys',
      '--name',
      'State',
      '-v',
      'offline',
    ]).catch(() => undefined);
    await run('tgt-admin', ['-C', c, '--delete', 'ALL', '-f']).catch(() => undefined);
    await run('tgtadm', ['-C', c, '--op', 'delete', '--mode', 'system']).catch(() =>
      this.child?.kill('SIGKILL'),
    );
  }
}
