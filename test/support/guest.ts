import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './processes';
import { waitFor } from './rpc';

const run = promisify(execFile);

/** The test guest image (test/guest/build-image.sh), built once and cached until its script changes. */
export async function testImage(): Promise<string> {
  const { stdout } = await run(join(ROOT, 'test', 'guest', 'build-image.sh'), [], { timeout: 300_000 });
  const path = stdout.trim().split('\n').pop();
  if (!path) throw new Error('build-image.sh printed no path');
  return path;
}

/**
 * The guest's console file (serial port 0). `waitFor` looks only at what was written after
 * `mark()`, so a line from before a reboot never answers for the new boot.
 */
export class GuestConsole {
  private from = 0;

  constructor(readonly path: string) {}

  async text(): Promise<string> {
    return readFile(this.path, 'latin1').catch(() => '');
  }

  async mark(): Promise<void> {
    this.from = (await this.text()).length;
  }

  async waitFor(pattern: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return waitFor(
      async () => {
        const text = await this.text();
        // libvirt truncates the file when the domain starts again
        return (text.length < this.from ? text : text.slice(this.from)).match(pattern) ?? undefined;
      },
      what,
      timeoutMs,
    );
  }
}

/** The root shell the test image runs on its second serial port, reached through libvirt's unix socket. */
export class GuestShell {
  private buffer = '';
  private count = 0;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
    });
  }

  /**
   * Connects, then knocks until the shell answers: bytes sent before the guest's shell reads
   * its port are lost, so a lone first command could wait forever.
   */
  static async connect(path: string, timeoutMs = 60_000): Promise<GuestShell> {
    const socket = await waitFor(
      () =>
        new Promise<Socket | undefined>((resolve) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', () => resolve(undefined));
        }),
      `the guest shell at ${path}`,
      timeoutMs,
    );
    const shell = new GuestShell(socket);
    const knock = `__READY_${Date.now()}__`;
    await waitFor(
      async () => {
        socket.write(`echo ${knock}\n`);
        await new Promise((r) => setTimeout(r, 500));
        return shell.buffer.includes(`${knock}\n`) || shell.buffer.includes(`${knock}\r\n`) || undefined;
      },
      `the guest shell at ${path} to answer`,
      timeoutMs,
    );
    return shell;
  }

  /** Runs a shell line in the guest; resolves its output, or rejects when it exits non-zero. */
  async run(line: string, timeoutMs = 15_000): Promise<string> {
    const n = ++this.count;
    const begin = `__BEGIN_${n}__`;
    const end = new RegExp(`__END_${n}__ (\\d+)`);
    this.socket.write(`echo ${begin}; ${line}; echo __END_${n}__ $?\n`);
    const match = await waitFor(
      () => {
        const at = this.buffer.search(new RegExp(`${begin}\r?\n`));
        if (at < 0) return undefined;
        const rest = this.buffer.slice(at + begin.length).replace(/^\r?\n/, '');
        const done = end.exec(rest);
        return done === null ? undefined : { output: rest.slice(0, done.index), code: Number(done[1]) };
      },
      `the guest to run ${line}`,
      timeoutMs,
    );
    if (match.code !== 0) throw new Error(`${line} exited with ${match.code}: ${match.output}`);
    return match.output.replace(/\r/g, '');
  }

  close(): void {
    this.socket.destroy();
  }
}
