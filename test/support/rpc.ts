import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { adminContext, type RequestContext } from '@basalt/context';
import { createLogger, type Logger } from '@basalt/log';
import { type RpcOptions, RpcTransport } from '@basalt/rpc';
import * as amqp from 'amqplib';

export const BROKER_URL = process.env.BASALT_TEST_BROKER ?? 'amqp://guest:guest@127.0.0.1:5672/';

export const uniqueName = (prefix: string) => `${prefix}_${randomBytes(5).toString('hex')}`;

const rabbitmqctl = (...args: string[]) => promisify(execFile)('rabbitmqctl', args, { timeout: 60_000 });

/**
 * A RabbitMQ virtual host of the test's own. Queue names (`scheduler`, `volume`) are fixed by the
 * protocol and shared by everything in a vhost, so processes under test get a vhost to themselves.
 */
export async function createVhost(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = uniqueName('basalt_test');
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  const url = new URL(BROKER_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => rabbitmqctl('delete_vhost', name).then(() => undefined) };
}

export function quietLogger(name = 'test'): Logger {
  return createLogger({ name, level: process.env.BASALT_TEST_LOG ?? 'silent' });
}

/** Options on a control exchange and dead-letter queue of this test's own, so runs never collide. */
export function testRpcOptions(overrides: Partial<RpcOptions> = {}): RpcOptions {
  return {
    url: BROKER_URL,
    exchange: uniqueName('basalt_test'),
    durable: true,
    quorum: false,
    transientQueueTtlSec: 600,
    prefetch: 16,
    callTimeoutMs: 5000,
    deadLetterQueue: uniqueName('basalt_test_dlq'),
    connectRetries: 3,
    reconnectDelayMaxMs: 1000,
    log: quietLogger(),
    ...overrides,
  };
}

export function testContext(overrides: Partial<RequestContext> = {}): RequestContext {
  return adminContext({ projectId: 'p1', userId: 'u1', ...overrides });
}

/** Tracks the transports a test opens and the broker objects it declared, and removes them all. */
export class BrokerFixture {
  private readonly transports: RpcTransport[] = [];
  readonly queues = new Set<string>();
  readonly exchanges = new Set<string>();

  async transport(options: RpcOptions): Promise<RpcTransport> {
    const transport = await RpcTransport.connect(options);
    this.transports.push(transport);
    this.exchanges.add(options.exchange);
    this.queues.add(options.deadLetterQueue);
    this.queues.add(transport.client.replyQueue);
    return transport;
  }

  /** Raw confirm channel for tests that publish or inspect by hand; publishes are confirmed before it closes. */
  async withChannel<T>(fn: (channel: amqp.ConfirmChannel) => Promise<T>, url = BROKER_URL): Promise<T> {
    const connection = await amqp.connect(url);
    connection.on('error', () => undefined);
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', () => undefined);
      const result = await fn(channel);
      await channel.waitForConfirms();
      return result;
    } finally {
      await connection.close();
    }
  }

  /** Waits for `count` messages on the dead-letter queue `queue`, takes them, and checks no more came. */
  async deadLetters(queue: string, count: number): Promise<Array<{ body: Buffer; reason: unknown }>> {
    const letters: Array<{ body: Buffer; reason: unknown }> = [];
    await waitFor(
      () =>
        this.withChannel(async (channel) => {
          for (;;) {
            const msg = await channel.get(queue, { noAck: true });
            if (!msg) break;
            letters.push({ body: msg.content, reason: msg.properties.headers?.['x-basalt-reason'] });
          }
          return letters.length >= count || undefined;
        }),
      `${count} dead letters`,
    );
    if (letters.length !== count) throw new Error(`expected ${count} dead letters, got ${letters.length}`);
    return letters;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.transports.splice(0).map((t) => t.close().catch(() => undefined)));
    await this.withChannel(async (channel) => {
      for (const queue of this.queues) await channel.deleteQueue(queue);
      for (const exchange of this.exchanges) await channel.deleteExchange(exchange);
    }).catch(() => undefined);
  }
}

export async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
