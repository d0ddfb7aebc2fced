import { type Command, CommandError, type CommandResult, type CommandRunner, succeeded } from './runner';

type Reply = Partial<CommandResult> | ((argv: readonly string[]) => Partial<CommandResult>);

/**
 * A runner for unit tests of drivers: records every argv and answers from a script keyed by the
 * command's leading words. It applies the same success rule as the real runner.
 */
export class ScriptedRunner implements CommandRunner {
  readonly calls: Command[] = [];
  private readonly replies: Array<{ prefix: readonly string[]; reply: Reply }> = [];

  on(prefix: readonly string[], reply: Reply): this {
    this.replies.unshift({ prefix, reply });
    return this;
  }

  get argvs(): string[][] {
    return this.calls.map((c) => [...c.argv]);
  }

  async run(command: Command): Promise<CommandResult> {
    this.calls.push(command);
    const match = this.replies.find((r) => r.prefix.every((word, i) => command.argv[i] === word));
    const given = typeof match?.reply === 'function' ? match.reply(command.argv) : (match?.reply ?? {});
    const result = { exitCode: 0, stdout: '', stderr: '', durationMs: 0, ...given };
    if (!succeeded(command, result.exitCode)) {
      throw CommandError.of(
        command,
        `exited with ${result.exitCode}: ${result.stderr}`,
        result.exitCode,
        result.stderr,
        {
          retryable: (command.retryExitCodes ?? []).includes(result.exitCode),
        },
      );
    }
    return result;
  }
}
