import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RpcConnectionError } from '@basalt/rpc';
import { BrokerFixture, testContext, testRpcOptions, uniqueName, waitFor } from '../support/rpc';

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 60_000 });

describe('a broker restart in the middle of traffic', () => {
  const broker = new BrokerFixture();
  // one message at a time, slowly, so casts are still queued in the broker when it stops
  const options = testRpcOptions({ prefetch: 1, reconnectDelayMaxMs: 500 });
  const topic = uniqueName('restart');
  const handled = new Set<number>();

  afterAll(async () => {
    await rabbitmqctl('start_app').catch(() => undefined); // never leave the broker down
    await broker.cleanup();
  });

  test('loses no cast, fails calls fast while down, and serves calls again after', async () => {
    for (const q of [topic, `${topic}.h`]) broker.queues.add(q);
    const server = await broker.transport(options);
    await server.serve({
      topic,
      host: 'h',
      endpoints: [
        {
          version: '1.0',
          methods: {
            note: async (args) => {
              await new Promise((r) => setTimeout(r, 100));
              handled.add(Number(args.n));
              return null;
            },
            echo: async (args) => args.value,
          },
        },
      ],
    });
    const client = (await broker.transport(options)).client;
    const ctx = testContext();

    for (let n = 1; n <= 10; n++) await client.cast(ctx, { topic }, 'note', { n });
    expect(handled.size).toBeLessThan(10); // some are still waiting in the broker's queue

    await rabbitmqctl('stop_app');
    const duringOutage = [11, 12, 13, 14, 15].map((n) => client.cast(ctx, { topic }, 'note', { n }));
    const started = Date.now();
    const callError = await client.call(ctx, { topic }, 'echo', { value: 1 }).catch((e: unknown) => e);
    expect(callError).toBeInstanceOf(RpcConnectionError);
    expect((callError as RpcConnectionError).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);

    await rabbitmqctl('start_app');
    await Promise.all(duringOutage);
    const answer = await waitFor(
      () =>
        client.call(ctx, { topic }, 'echo', { value: 'back' }, { timeoutMs: 2000 }).catch(() => undefined),
      'a call to succeed after the restart',
      30_000,
    );
    expect(answer).toBe('back');
    await waitFor(() => handled.size === 15 || undefined, 'every cast handled', 30_000);
    expect([...handled].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  }, 90_000);
});
