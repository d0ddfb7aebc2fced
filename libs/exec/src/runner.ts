import { BasaltError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { ATTR, endSpan, metrics, SpanKind, SpanStatusCode, startSpan } from '@basalt/trace';

/** One external command: always an argv array, never a shell line. */
export interface Command {
  readonly argv: readonly [string, ...string[]];
  /** Exit codes that count as success besides 0 (iscsiadm's 15 "already logged in", …). */
  readonly okExitCodes?: readonly number[];
  /** Exit codes worth running the command again for (a busy lock, a device settling). */
  readonly retryExitCodes?: readonly number[];
  /** Extra attempts after the first when the exit code is in `retryExitCodes`. */
  readonly retries?: number;
  readonly timeoutMs?: number;
  /** Values to hide wherever the command is logged or reported (CHAP passwords, tokens). */
  readonly secrets?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: string;
}

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

/** The single way Basalt runs system commands; drivers get one injected, tests a scripted one. */
export interface CommandRunner {
  run(command: Command, log?: Logger): Promise<CommandResult>;
}

export class CommandError extends BasaltError {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    options: { retryable: boolean; cause?: unknown },
  ) {
    super(message, { ...options, data: { argv, exitCode, stderr } });
  }

  /** An error for `command` whose text shows none of its secrets. */
  static of(
    command: Command,
    what: string,
    exitCode: number | null,
    stderr: string,
    options: { retryable: boolean; cause?: unknown },
  ): CommandError {
    const hide = (s: string) => redact(s, command.secrets);
    return new CommandError(
      hide(`${command.argv.join(' ')} ${what}`),
      command.argv.map(hide),
      exitCode,
      hide(stderr),
      options,
    );
  }
}

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

/** Whether `exitCode` counts as success for `command`. */
export const succeeded = (command: Command, exitCode: number) =>
  exitCode === 0 || (command.okExitCodes ?? []).includes(exitCode);

export const DEFAULT_TIMEOUT_MS = 120_000;
const RETRY_DELAY_MS = 200;

/**
 * What every runner does around one attempt at a command: bounded retries, a span per attempt,
 * the duration metric, secrets redacted in every log line and error. `once` is how a command runs.
 */
export abstract class TracedRunner implements CommandRunner {
  constructor(protected readonly log: Logger) {}

  async run(command: Command, log: Logger = this.log): Promise<CommandResult> {
    const attempts = 1 + (command.retries ?? 0);
    for (let attempt = 1; ; attempt++) {
      const result = await this.traced(command, log);
      const ok = succeeded(command, result.exitCode);
      if (ok) return result;
      const shown = redact(command.argv.join(' '), command.secrets);
      const retry = (command.retryExitCodes ?? []).includes(result.exitCode);
      if (retry && attempt < attempts) {
        log.warn({ cmd: shown, exitCode: result.exitCode, attempt }, 'command failed, retrying');
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS * attempt));
        continue;
      }
      const detail = redact((result.stderr.trim() || result.stdout.trim()).slice(0, 2000), command.secrets);
      throw CommandError.of(
        command,
        `exited with ${result.exitCode}: ${detail}`,
        result.exitCode,
        result.stderr,
        {
          retryable: retry,
        },
      );
    }
  }

  /** One run in a span of its own (redacted argv, exit code), timed by command. */
  private async traced(command: Command, log: Logger): Promise<CommandResult> {
    const name = command.argv[0].split('/').pop() as string;
    const span = startSpan(`exec ${name}`, {
      kind: SpanKind.CLIENT,
      attributes: { [ATTR.argv]: command.argv.map((a) => redact(a, command.secrets)) },
    });
    const started = performance.now();
    try {
      const result = await this.once(command, log);
      const ok = succeeded(command, result.exitCode);
      span.setAttribute(ATTR.exitCode, result.exitCode);
      if (!ok) {
        const detail = (result.stderr.trim() || result.stdout.trim()).slice(0, 500);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: `exited with ${result.exitCode}: ${redact(detail, command.secrets)}`,
        });
      }
      span.end();
      metrics.commandSeconds.observe(
        { command: name, outcome: ok ? 'ok' : 'error' },
        (performance.now() - started) / 1000,
      );
      return result;
    } catch (error) {
      endSpan(span, error);
      metrics.commandSeconds.observe(
        { command: name, outcome: 'error' },
        (performance.now() - started) / 1000,
      );
      throw error;
    }
  }

  /** One attempt: its result whatever its exit code; a `CommandError` when it could not run or timed out. */
  protected abstract once(command: Command, log: Logger): Promise<CommandResult>;
}

/** Runs commands with execa: no shell, a timeout, bounded retries, secrets redacted in every log line. */
export class ExecaRunner extends TracedRunner {
  private execa?: typeof import('execa', { with: { 'resolution-mode': 'import' }}).execa;

  protected async once(command: Command, log: Logger): Promise<CommandResult> {
    this.execa ??= (await import('execa')).execa;
    const [file, ...args] = command.argv;
    const shown = redact(command.argv.join(' '), command.secrets);
    const started = performance.now();
    try {
      const result = await this.execa(file, args, {
        reject: false,
        timeout: command.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        env: command.env,
        input: command.input,
        stdin: command.input === undefined ? 'ignore' : 'pipe',
        stripFinalNewline: false,
      });
      const durationMs = performance.now() - started;
      if (result.timedOut) {
        const ms = command.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        throw CommandError.of(command, `timed out after ${ms} ms`, null, '', { retryable: true });
      }
      if (result.exitCode === undefined) {
        throw CommandError.of(command, `could not run: ${result.shortMessage}`, null, '', {
          retryable: false,
        });
      }
      log.debug({ cmd: shown, exitCode: result.exitCode, ms: Math.round(durationMs) }, 'command');
      return {
        exitCode: result.exitCode,
        stdout: String(result.stdout),
        stderr: String(result.stderr),
        durationMs,
      };
    } catch (error) {
      if (error instanceof CommandError) throw error;
      throw CommandError.of(command, 'could not run', null, '', { retryable: false, cause: error });
    }
  }
}
