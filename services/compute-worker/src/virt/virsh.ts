import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '@basalt/errors';
import { CommandError, type CommandResult, type CommandRunner } from '@basalt/exec';
import { HypervisorError } from './errors';
import { TRANSIENT, VirshSessions } from './virsh-session';

/** What a word of a command sent to a session may be. */
const WORD = /^[A-Za-z0-9_./:-]+$/;

export interface VirshOptions {
  /** Failures whose stderr matches resolve `undefined` (a domain already gone, already stopped). */
  readonly benign?: RegExp;
  /** Values to hide from logs and errors. */
  readonly secrets?: readonly string[];
}

/**
 * `virsh -c <uri>`, a process per command through the command runner or a line to a long-lived
 * session (`VirshSessions`, which takes plain words only); failures become `HypervisorError`s.
 */
export class Virsh {
  constructor(
    private readonly runner: CommandRunner | VirshSessions,
    readonly uri: string,
    private readonly timeoutMs = 60_000,
  ) {}

  run(
    args: readonly string[],
    options: VirshOptions & { benign: RegExp },
  ): Promise<CommandResult | undefined>;
  run(args: readonly string[], options?: VirshOptions): Promise<CommandResult>;
  async run(args: readonly string[], options: VirshOptions = {}): Promise<CommandResult | undefined> {
    if (!(this.runner instanceof VirshSessions)) return this.attempt(args, args, options);
    // a session's command is a line virsh parses: plain tokens only (names, UUIDs, paths of
    // `withFile`), so none can reach virsh's parser as syntax
    for (const word of args) {
      if (!WORD.test(word)) throw new InvalidInputError(`Not a plain virsh word: ${word}`);
    }
    return this.attempt([args.join(' ')], args, options);
  }

  /** `words` after `virsh -c <uri>`; `first` is the command that names a failure. */
  private async attempt(
    words: readonly string[],
    first: readonly string[],
    options: VirshOptions,
  ): Promise<CommandResult | undefined> {
    try {
      return await this.runner.run({
        argv: ['virsh', '-c', this.uri, ...words],
        timeoutMs: this.timeoutMs,
        ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
      });
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      if (options.benign?.test(error.stderr)) return undefined;
      throw new HypervisorError(`virsh ${first[0]} failed: ${error.stderr.trim() || error.message}`, {
        retryable: error.retryable || TRANSIENT.test(error.stderr),
        cause: error,
        data: { command: first[0], exitCode: error.exitCode },
      });
    }
  }

  /**
   * Runs `use` with `content` in a file (0600) of this process's private directory (0700), the
   * file removed afterwards: how XML documents and secret values reach virsh, which reads them
   * from a path (its stdin is a socket under Node, which /dev/stdin cannot open).
   */
  async withFile<T>(content: string, use: (path: string) => Promise<T>): Promise<T> {
    const name = `document-${randomBytes(8).toString('hex')}`;
    let path = join(await documentsDir(), name);
    try {
      await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // the directory was taken away under the running process (a tmp cleaner): a new one
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      documents = undefined;
      path = join(await documentsDir(), name);
      await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    }
    try {
      return await use(path);
    } finally {
      await rm(path, { force: true });
    }
  }
}

let documents: Promise<string> | undefined;

/** `basalt-virsh-<pid>-<random>`: whose directory it is, so that a dead process's can be found. */
const DOCUMENTS_DIR = /^basalt-virsh-(\d+)-/;

/** Whether a process with this pid is alive (signal 0 only asks; EPERM: alive, someone else's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The directories of processes that died without removing theirs (kill -9, a crash, a killed test worker). */
async function removeOrphans(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const pid = Number(DOCUMENTS_DIR.exec(name)?.[1]);
      if (!pid || pid === process.pid || alive(pid)) return;
      await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
    }),
  );
}

/**
 * The private directory virsh's documents go through, made once per process and removed at its
 * exit; the ones of processes that could not remove theirs are removed as it is made.
 */
function documentsDir(): Promise<string> {
  documents ??= removeOrphans()
    .then(() => mkdtemp(join(tmpdir(), `basalt-virsh-${process.pid}-`)))
    .then((dir) => {
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      return dir;
    });
  return documents;
}
