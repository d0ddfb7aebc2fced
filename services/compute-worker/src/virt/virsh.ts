import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '@basalt/errors';
import { CommandError, type CommandResult, type CommandRunner } from '@basalt/exec';
import { HypervisorError } from './errors';
import { TRANSIENT, VirshSessions } from './virsh-session';

/** What a word of a command in a `sequence` may be. */
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
    return this.exec([args], options, this.runner instanceof VirshSessions);
  }

  /**
   * Several commands in one virsh process and one libvirtd connection (virsh's own `;`
   * separator, no shell). virsh runs them all; a process exits with the status of the last alone,
   * a session fails the line if any of them failed: for sequences whose last command can only
   * succeed if those before it did, where both read the same. Every word must be a
   * plain token (names, UUIDs, paths of `withFile`), so none can reach virsh's parser as syntax.
   */
  sequence(
    commands: readonly (readonly string[])[],
    options: VirshOptions & { benign: RegExp },
  ): Promise<CommandResult | undefined>;
  sequence(commands: readonly (readonly string[])[], options?: VirshOptions): Promise<CommandResult>;
  async sequence(
    commands: readonly (readonly string[])[],
    options: VirshOptions = {},
  ): Promise<CommandResult | undefined> {
    return this.exec(commands, options, true);
  }

  /** The commands as one virsh line of plain words (`asLine`), else the one command's own argv words. */
  private async exec(
    commands: readonly (readonly string[])[],
    options: VirshOptions,
    asLine: boolean,
  ): Promise<CommandResult | undefined> {
    const [first = []] = commands;
    if (!asLine) return this.attempt(first, first, options);
    for (const word of commands.flat()) {
      if (!WORD.test(word)) throw new InvalidInputError(`Not a plain virsh word: ${word}`);
    }
    return this.attempt([commands.map((command) => command.join(' ')).join(' ; ')], first, options);
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
   * Runs `use` with `content` in a file of a private directory (0700, removed afterwards): how
   * XML documents and secret values reach virsh, which reads them from a path (its stdin is a
   * socket under Node, which /dev/stdin cannot open).
   */
  async withFile<T>(content: string, use: (path: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'basalt-virsh-'));
    try {
      const path = join(dir, 'document');
      await writeFile(path, content, { mode: 0o600 });
      return await use(path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
