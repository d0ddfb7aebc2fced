import { adminContext } from '@basalt/context';
import { BasaltError, InvalidInputError } from '@basalt/errors';
import pino from 'pino';
import { retryMiddleware } from './middleware';
import type { Invocation } from './server';

const invocation: Invocation = {
  method: 'create_volume',
  args: {},
  context: adminContext(),
  log: pino({ level: 'silent' }),
  kind: 'cast',
  version: '1.0',
};

/** A handler that throws each of `failures` in turn, then answers 'done'; counts its runs. */
function flaky(...failures: unknown[]) {
  const handler = async () => {
    handler.runs++;
    const failure = failures.shift();
    if (failure !== undefined) throw failure;
    return 'done';
  };
  handler.runs = 0;
  return handler;
}

const retry = retryMiddleware({
  attempts: 3,
  backoffMs: 1,
  retryable: (error) => error instanceof BasaltError && error.retryable,
});

describe('retryMiddleware', () => {
  test('an error worth retrying runs the handler again until it succeeds', async () => {
    const handler = flaky(new BasaltError('connection lost', { retryable: true }));
    await expect(retry(handler)(invocation)).resolves.toBe('done');
    expect(handler.runs).toBe(2);
  });

  test('an error not worth retrying is thrown at once', async () => {
    const handler = flaky(new InvalidInputError('size must be positive'));
    await expect(retry(handler)(invocation)).rejects.toThrow('size must be positive');
    expect(handler.runs).toBe(1);
  });

  test('after `attempts` runs the last error is thrown', async () => {
    const handler = flaky(...[1, 2, 3, 4].map((n) => new BasaltError(`down ${n}`, { retryable: true })));
    await expect(retry(handler)(invocation)).rejects.toThrow('down 3');
    expect(handler.runs).toBe(3);
  });

  test('waits grow: backoff, then twice that', async () => {
    const waits: number[] = [];
    let last = performance.now();
    const handler = async () => {
      const now = performance.now();
      waits.push(now - last);
      last = now;
      if (waits.length < 3) throw new BasaltError('busy', { retryable: true });
      return 'done';
    };
    const slow = retryMiddleware({ attempts: 3, backoffMs: 40, retryable: () => true });
    await slow(handler)(invocation);
    // lower bounds with slack: a timer may fire early by the length of the turn that set it
    expect(waits[1]).toBeGreaterThanOrEqual(30);
    expect(waits[2]).toBeGreaterThanOrEqual(70);
  });
});
