import { EventEmitter } from 'node:events';
import { createLogger } from '@basalt/log';
import type * as amqp from 'amqplib';
import type { AmqpConnection, DownHandler, UpHandler } from './connection';
import type { RpcOptions } from './options';

/** Options for a client or server on a `FakeConnection`: exchange `nova`, dead letters to `dlq`. */
export const fakeRpcOptions: RpcOptions = {
  url: 'amqp://unused',
  exchange: 'nova',
  durable: true,
  quorum: false,
  transientQueueTtlSec: 600,
  prefetch: 8,
  callTimeoutMs: 2000,
  deadLetterQueue: 'dlq',
  connectRetries: 1,
  reconnectDelayMaxMs: 10,
  log: createLogger({ name: 'test', level: 'silent' }),
};

export interface Published {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: amqp.Options.Publish;
}

/**
 * A channel for unit tests of the client and the server: records what is published, sent to a
 * queue and acknowledged, delivers messages to consumers on demand, and answers publisher
 * confirms as `confirm` says (a nack when it returns an error).
 */
export class FakeChannel extends EventEmitter {
  readonly published: Published[] = [];
  readonly sent: Array<{ queue: string; content: Buffer; options: amqp.Options.Publish }> = [];
  readonly acked: amqp.Message[] = [];
  /** What happened, in order: `publish <routing key>`, `send <queue>`, `ack`. */
  readonly events: string[] = [];
  readonly consumers = new Map<string, (msg: amqp.ConsumeMessage | null) => void>();
  confirm: (published: Published) => Error | undefined = () => undefined;
  private deliveries = 0;

  async assertQueue(queue: string) {
    return { queue, messageCount: 0, consumerCount: 0 };
  }
  async assertExchange(exchange: string) {
    return { exchange };
  }
  async bindQueue() {
    return {};
  }
  async prefetch() {}
  async cancel() {
    return { consumerTag: '' };
  }
  async close() {}

  async consume(queue: string, onMessage: (msg: amqp.ConsumeMessage | null) => void) {
    this.consumers.set(queue, onMessage);
    return { consumerTag: `ctag-${queue}` };
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: amqp.Options.Publish = {},
    confirmed?: (error: unknown) => void,
  ): boolean {
    const published = { exchange, routingKey, content, options };
    this.published.push(published);
    this.events.push(`publish ${routingKey}`);
    if (confirmed) queueMicrotask(() => confirmed(this.confirm(published)));
    return true;
  }

  sendToQueue(queue: string, content: Buffer, options: amqp.Options.Publish = {}): boolean {
    this.sent.push({ queue, content, options });
    this.events.push(`send ${queue}`);
    return true;
  }

  ack(msg: amqp.Message): void {
    this.acked.push(msg);
    this.events.push('ack');
  }

  /** Hands `content` to the consumer of `queue`, as the broker would. */
  deliver(queue: string, content: Buffer, properties: Partial<amqp.MessageProperties> = {}): void {
    const consumer = this.consumers.get(queue);
    if (!consumer) throw new Error(`nobody consumes ${queue}`);
    consumer({
      content,
      fields: {
        deliveryTag: ++this.deliveries,
        redelivered: false,
        exchange: '',
        routingKey: queue,
        consumerTag: `ctag-${queue}`,
      },
      properties: { headers: {}, ...properties } as amqp.MessageProperties,
    });
  }

  /** Gives a published mandatory message back as unroutable. */
  returnMessage(published: Published): void {
    this.emit('return', { content: published.content, fields: {}, properties: published.options });
  }
}

/** Stands in for `AmqpConnection`: one open connection whose channels are `FakeChannel`s. */
export class FakeConnection {
  readonly channels: FakeChannel[] = [];
  private readonly down: DownHandler[] = [];
  private readonly up: UpHandler[] = [];
  private readonly model = {
    createChannel: async () => this.open(),
    createConfirmChannel: async () => this.open(),
  } as unknown as amqp.ChannelModel;

  constructor(private connected = true) {}

  get isUp(): boolean {
    return this.connected;
  }

  onDown(handler: DownHandler): void {
    this.down.push(handler);
  }

  async whenUp(handler: UpHandler): Promise<void> {
    this.up.push(handler);
    if (this.connected) await handler(this.model);
  }

  reset(): void {}

  /** The broker went away: every down handler hears it. */
  lose(error: Error): void {
    this.connected = false;
    for (const handler of this.down) handler(error);
  }

  /** The broker is back: every up handler runs again on new channels. */
  async restore(): Promise<void> {
    this.connected = true;
    for (const handler of this.up) await handler(this.model);
  }

  asConnection(): AmqpConnection {
    return this as unknown as AmqpConnection;
  }

  private open(): FakeChannel {
    const channel = new FakeChannel();
    this.channels.push(channel);
    return channel;
  }
}
