import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  type Command,
  CommandError,
  type CommandResult,
  DEFAULT_TIMEOUT_MS,
  redact,
  TracedRunner,
} from '@basalt/exec';
import type { Logger } from '@basalt/log';

/** Failures that pass: libvirtd restarting, a job holding the domain's lock, a connection dropped. */
export const TRANSIENT =
  /Failed to connect socket|cannot acquire state change lock|Timed out during operation|End of file while reading data|unable to connect to server|connection is closed|Disconnected from/i;

/** How virsh says a command failed, on stderr (an interactive virsh has no exit status per command). */
const FAILED = /^error: /m;

/** Sessions side by side: a slow command (a guest's start) does not hold up another guest's attach. */
const SESSIONS = 4;

/**
 * Long-lived interactive `virsh -c <uri>` processes, each one libvirtd connection: a command costs
 * neither a process start nor a connection handshake. The commands are the lines virsh would
 * parse (`virsh -c <uri> <line>`, as a sequence is run), so every run is still an `exec virsh`
 * span with its line, retried, timed and redacted as the runner does it. A session runs one
 * command at a time. One that timed out, lost libvirtd or spoke unasked is ended, and the next
 * command gets a fresh one: a restarted libvirtd is reconnected to that way.
 */
export class VirshSessions extends TracedRunner {
  private readonly idle: Session[] = [];
  private readonly waiting: Array<(session: Session) => void> = [];
  private open = 0;
  private closed = false;

  constructor(
    log: Logger,
    readonly uri: string,
  ) {
    super(log);
  }

  /** Ends every session (those busy once their command is done). */
  close(): void {
    this.closed = true;
    for (const session of this.idle.splice(0)) session.end();
  }

  protected async once(command: Command, log: Logger): Promise<CommandResult> {
    const [, flag, uri, line, ...rest] = command.argv;
    if (flag !== '-c' || uri !== this.uri || line === undefined || rest.length > 0 || /[\r\n]/.test(line)) {
      throw CommandError.of(command, 'is not one virsh line for this session', null, '', {
        retryable: false,
      });
    }
    const session = await this.take();
    const started = performance.now();
    try {
      const { stdout, stderr } = await session.run(line, command.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      const exitCode = FAILED.test(stderr) ? 1 : 0;
      if (TRANSIENT.test(stderr)) session.end();
      const durationMs = performance.now() - started;
      log.debug(
        { cmd: redact(line, command.secrets), exitCode, ms: Math.round(durationMs) },
        'virsh session command',
      );
      return { exitCode, stdout, stderr, durationMs };
    } catch (error) {
      // whether it ran is unknown: callers' commands are idempotent, so it is worth another go
      throw CommandError.of(command, (error as Error).message, null, '', { retryable: true, cause: error });
    } finally {
      this.give(session);
    }
  }

  private take(): Promise<Session> {
    for (let session = this.idle.pop(); session; session = this.idle.pop()) {
      if (session.alive) return Promise.resolve(session);
      // it exited while idle
      this.open--;
    }
    if (this.open < SESSIONS) {
      this.open++;
      return Promise.resolve(new Session(this.uri, this.log));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private give(session: Session): void {
    let next = session;
    if (this.closed || !session.alive) {
      session.end();
      this.open--;
      if (this.closed || this.waiting.length === 0) return;
      this.open++;
      next = new Session(this.uri, this.log);
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(next);
    else this.idle.push(next);
  }
}

/** One interactive virsh: lines in on stdin, each followed by markers that close its stdout and stderr. */
class Session {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private busy = false;
  private wake: (() => void) | undefined;
  private ended: string | undefined;

  constructor(uri: string, log: Logger) {
    // no history kept (memory, a file); a dumb terminal, so the echo of a line stays on its line
    this.child = spawn('virsh', ['-c', uri], {
      env: { ...process.env, TERM: 'dumb', VIRSH_HISTSIZE: '0' },
      stdio: 'pipe',
    });
    const read = (stream: 'stdout' | 'stderr') => (chunk: string) => {
      this[stream] += chunk;
      if (stream === 'stderr' && !this.busy) {
        // said between commands (libvirtd gone): this connection is not to be trusted
        log.warn({ stderr: chunk.trim().slice(0, 500) }, 'virsh session ended');
        this.end();
      }
      this.wake?.();
    };
    this.child.stdout.setEncoding('utf8').on('data', read('stdout'));
    this.child.stderr.setEncoding('utf8').on('data', read('stderr'));
    // a broken pipe to a virsh that died is told by its exit
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (error) => this.stop(`virsh could not run: ${error.message}`));
    this.child.on('exit', (code, signal) => this.stop(`virsh session exited (${signal ?? code})`));
    // idle sessions never keep the worker's process alive; a pending command's timer does
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      (stream as unknown as { unref?: () => void }).unref?.();
    }
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Lets virsh finish (end of its input); it is not given another command. */
  end(): void {
    this.ended ??= 'virsh session ended';
    this.child.stdin.end();
  }

  /** `line`'s stdout (virsh's prompt and the echo of the line taken off) and stderr. */
  async run(line: string, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
    if (this.ended !== undefined) throw new Error(this.ended);
    const mark = randomBytes(8).toString('hex');
    // `echo --xml` answers `&lt;…&gt;`, which the echo of its own line does not contain
    const begin = `&lt;b${mark}&gt;`;
    const done = `&lt;e${mark}&gt;`;
    this.busy = true;
    this.stdout = '';
    this.stderr = '';
    const timer = setTimeout(() => this.kill(`timed out after ${timeoutMs} ms`), timeoutMs);
    try {
      this.child.stdin.write(
        `echo --xml "<b${mark}>"\n${line}\necho --xml "<e${mark}>"\necho --err --xml "<e${mark}>"\n`,
      );
      while (!(this.stdout.includes(done) && this.stderr.includes(done))) {
        if (this.ended !== undefined) throw new Error(this.ended);
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
      this.busy = false;
    }
    // after the begin marker (and its newline): a prompt and the echo of `line` up to its newline,
    // then its output, which runs up to the prompt before the echo of the end marker's line
    let after = this.stdout.indexOf(begin) + begin.length;
    if (this.stdout[after] === '\n') after++;
    const from = this.stdout.indexOf('\n', after) + 1;
    const to = this.stdout.lastIndexOf(`echo --xml "<e${mark}>"`);
    const stdout = this.stdout.slice(from, to).replace(/virsh [#>] $/, '');
    const stderr = this.stderr.slice(0, this.stderr.lastIndexOf(`error: ${done}`));
    return { stdout, stderr };
  }

  private kill(why: string): void {
    this.stop(why);
    this.child.kill('SIGKILL');
  }

  private stop(why: string): void {
    this.ended ??= why;
    this.wake?.();
  }
}
