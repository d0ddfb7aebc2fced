import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@basalt/log';
import { metrics, recordSpans, type SpanRecorder, SpanStatusCode, withSpan } from '@basalt/trace';
import { CommandError, ExecaRunner, redact } from './runner';
import { ScriptedRunner } from './scripted-runner';

// These run real commands: the runner's job is talking to the OS, so faking it would prove nothing.
describe('ExecaRunner', () => {
  const lines: string[] = [];
  const log = createLogger({
    name: 'test',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(line) },
  });
  const runner = new ExecaRunner(log);

  test('runs an argv without a shell', async () => {
    const result = await runner.run({ argv: ['echo', '$(id)', ';', 'ls'] });
    expect(result.stdout).toBe('$(id) ; ls\n');
    expect(result.exitCode).toBe(0);
  });

  test('a failing command raises CommandError with exit code and stderr, secrets hidden', async () => {
    const error = await runner
      .run({ argv: ['sh', '-c', 'echo "bad password s3cret" >&2; exit 3', 's3cret'], secrets: ['s3cret'] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    const ce = error as CommandError;
    expect(ce.exitCode).toBe(3);
    expect(ce.message).toContain('bad password ***');
    expect(ce.message).not.toContain('s3cret');
    expect(ce.argv).toContain('***');
    expect(ce.retryable).toBe(false);
    expect(lines.join('')).not.toContain('s3cret');
  });

  test('accepted exit codes count as success', async () => {
    await expect(runner.run({ argv: ['sh', '-c', 'exit 15'], okExitCodes: [15] })).resolves.toMatchObject({
      exitCode: 15,
    });
  });

  test('retries a retryable exit code a bounded number of times', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'basalt-exec-'));
    const counter = join(dir, 'n');
    const script = `echo x >> ${counter}; [ $(wc -l < ${counter}) -ge 3 ]`;
    await expect(
      runner.run({ argv: ['sh', '-c', script], retryExitCodes: [1], retries: 5 }),
    ).resolves.toBeDefined();
    expect(readFileSync(counter, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
    rmSync(dir, { recursive: true, force: true });
    const error = await runner
      .run({ argv: ['sh', '-c', 'exit 1'], retryExitCodes: [1], retries: 1 })
      .catch((e: unknown) => e);
    expect((error as CommandError).retryable).toBe(true);
  });

  test('a command past its timeout is killed and reported as retryable', async () => {
    const error = await runner.run({ argv: ['sleep', '5'], timeoutMs: 100 }).catch((e: unknown) => e);
    expect((error as CommandError).message).toContain('timed out after 100 ms');
    expect((error as CommandError).retryable).toBe(true);
  });

  test('a missing program is a clear, non-retryable error', async () => {
    const error = await runner.run({ argv: ['/nonexistent/tool'] }).catch((e: unknown) => e);
    expect((error as CommandError).message).toContain('/nonexistent/tool could not run');
  });

  test('redact hides every occurrence', () => {
    expect(redact('a pw b pw', ['pw', ''])).toBe('a *** b ***');
  });
});

describe('ScriptedRunner', () => {
  test('records argv and answers by prefix, applying the same success rule', async () => {
    const runner = new ScriptedRunner()
      .on(['vgs'], { stdout: '10 5' })
      .on(['lvcreate'], { exitCode: 5, stderr: 'no space' });
    expect((await runner.run({ argv: ['vgs', '--noheadings'] })).stdout).toBe('10 5');
    await expect(runner.run({ argv: ['lvcreate', '-L', '1G'] })).rejects.toThrow('no space');
    expect(runner.argvs).toEqual([
      ['vgs', '--noheadings'],
      ['lvcreate', '-L', '1G'],
    ]);
  });
});

describe('ExecaRunner spans', () => {
  let recorder: SpanRecorder;
  const runner = new ExecaRunner(createLogger({ name: 'test', level: 'silent' }));
  beforeEach(() => {
    recorder = recordSpans();
  });
  afterEach(() => recorder.stop());

  test('each run is a span with its redacted argv and exit code, a child of the active span', async () => {
    await withSpan('handler', {}, async () => {
      await runner.run({ argv: ['sh', '-c', 'exit 0', 'pw-s3cret'], secrets: ['s3cret'] });
    });
    const [command, handler] = recorder.spans();
    expect(command?.name).toBe('exec sh');
    expect(command?.attributes['process.command_args']).toEqual(['sh', '-c', 'exit 0', 'pw-***']);
    expect(command?.attributes['process.exit.code']).toBe(0);
    expect(command?.status.code).toBe(SpanStatusCode.UNSET);
    expect(command?.parentSpanContext?.spanId).toBe(handler?.spanContext().spanId);
    expect(JSON.stringify(recorder.spans().map((s) => s.attributes))).not.toContain('s3cret');
  });

  test('a failed run is a failed span saying why; a retried one is a span per attempt', async () => {
    await runner
      .run({ argv: ['sh', '-c', 'echo busy >&2; exit 5'], retryExitCodes: [5], retries: 1 })
      .catch(() => undefined);
    const spans = recorder.spans();
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'exited with 5: busy' });
      expect(span.attributes['process.exit.code']).toBe(5);
    }
  });

  test('command durations are counted by command and outcome', async () => {
    const count = async () =>
      ((await metrics.commandSeconds.get()).values.find(
        (v) => v.metricName === 'basalt_command_seconds_count' && v.labels.command === 'true',
      )?.value ?? 0) as number;
    const before = await count();
    await runner.run({ argv: ['true'] });
    expect(await count()).toBe(before + 1);
  });
});
