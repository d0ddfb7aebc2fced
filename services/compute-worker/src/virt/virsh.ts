import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, type CommandResult, type CommandRunner } from '@basalt/exec';
import { HypervisorError } from './errors';

/** Failures that pass: libvirtd restarting, a job holding the domain's lock, a connection dropped. */
const TRANSIENT =
  /Failed to connect socket|cannot acquire state change lock|Timed out during operation|End of file while reading data|unable to connect to server|connection is closed/i;

export interface VirshOptions {
  /** Failures whose stderr matches resolve `undefined` (a domain already gone, already stopped). */
  readonly benign?: RegExp;
  /** Values to hide from logs and errors. */
  readonly secrets?: readonly string[];
}

/** `virsh -c <uri>` through the command runner; failures become `HypervisorError`s. */
export class Virsh {
  constructor(
    private readonly runner: CommandRunner,
    readonly uri: string,
    private readonly timeoutMs = 60_000,
  ) {}

  run(
    args: readonly string[],
    options: VirshOptions & { benign: RegExp },
  ): Promise<CommandResult | undefined>;
  run(args: readonly string[], options?: VirshOptions): Promise<CommandResult>;
  async run(args: readonly string[], options: VirshOptions = {}): Promise<CommandResult | undefined> {
    try {
      return await this.runner.run({
        argv: ['virsh', '-c', this.uri, ...args],
        timeoutMs: this.timeoutMs,
        ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
      });
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      if (options.benign?.test(error.stderr)) return undefined;
      throw new HypervisorError(`virsh ${args[0]} failed: ${error.stderr.trim() || error.message}`, {
        retryable: error.retryable || TRANSIENT.test(error.stderr),
        cause: error,
        data: { command: args[0], exitCode: error.exitCode },
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
