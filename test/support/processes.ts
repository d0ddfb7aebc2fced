import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const SERVICES = ['api', 'scheduler', 'volume-worker', 'compute-worker'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** A Basalt service run as its own OS process, from the built `dist/main.js`, logging to a file. */
export class ServiceProcess {
  readonly logFile: string;
  private readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
    logDir: string,
  ) {
    this.logFile = join(logDir, `${name}.log`);
    const out = openSync(this.logFile, 'a');
    // BASALT_TEST_NODE_ARGS: extra node flags for the services, e.g. --cpu-prof to profile a run
    const nodeArgs = (process.env.BASALT_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean);
    this.child = spawn(process.execPath, [...nodeArgs, join(ROOT, script)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.log)) {
      if (this.child.exitCode !== null)
        throw new Error(`${this.name} exited (${this.child.exitCode}):\n${this.log}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no ${pattern} in ${timeoutMs} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A crash: SIGKILL, nothing finishes, and the exit is awaited. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, and the exit code; SIGKILL if it has not exited in `graceMs`. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function serviceScript(name: ServiceName): string {
  return join('services', name, 'dist', 'main.js');
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

/** The uid and gid of a system user (postgres, rabbitmq), for the directories its daemons write. */
export function userIds(name: string): [number, number] {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = (line ?? '').split(':');
  if (!uid || !gid) throw new Error(`no ${name} user: run ./stack.sh deps`);
  return [Number(uid), Number(gid)];
}
