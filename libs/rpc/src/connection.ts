import type { Socket } from 'node:net';
import { errorMessage } from '@basalt/errors';
import { type Logger, redactUrl } from '@basalt/log';
import * as amqp from 'amqplib';
import { RpcConnectionError } from './errors';

export type UpHandler = (connection: amqp.ChannelModel) => Promise<void>;
export type DownHandler = (error: Error) => void;

/**
 * One broker connection per process that comes back by itself: when the broker goes away it
 * reconnects with capped exponential backoff and runs every registered `onUp` handler again
 * (re-declare, re-consume, flush buffered casts). Any unexpected channel close resets the whole
 * connection, so there is a single recovery path.
 */
export class AmqpConnection {
  private connection?: amqp.ChannelModel;
  private readonly upHandlers: UpHandler[] = [];
  private readonly downHandlers: DownHandler[] = [];
  private closing = false;
  private reconnecting?: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly options: { connectRetries: number; reconnectDelayMaxMs: number; log: Logger },
  ) {}

  get isUp(): boolean {
    return this.connection !== undefined;
  }

  onUp(handler: UpHandler): void {
    this.upHandlers.push(handler);
  }

  onDown(handler: DownHandler): void {
    this.downHandlers.push(handler);
  }

  /** Connects, retrying a few times; throws a clear error if the broker stays unreachable. */
  async start(): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.options.connectRetries; attempt++) {
      try {
        await this.open();
        return;
      } catch (error) {
        lastError = error;
        this.options.log.warn({ attempt, err: errorMessage(error) }, 'broker not reachable yet');
        if (attempt < this.options.connectRetries) await sleep(this.backoff(attempt));
      }
    }
    throw new RpcConnectionError(
      `cannot reach the message broker at ${redactUrl(this.url)} after ${this.options.connectRetries} attempts: ${errorMessage(lastError)}`,
      lastError,
    );
  }

  /** Runs `handler` now (when connected) and after every reconnect. */
  async whenUp(handler: UpHandler): Promise<void> {
    this.onUp(handler);
    if (this.connection) await handler(this.connection);
  }

  /** Called by owners of channels when one closed unexpectedly. */
  reset(reason: string): void {
    const connection = this.connection;
    if (!connection || this.closing) return;
    this.options.log.warn({ reason }, 'resetting broker connection');
    connection.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection) await connection.close().catch(() => undefined);
  }

  private async open(): Promise<void> {
    // noDelay: a request or reply is several small frames; Nagle would hold the last one back
    const connection = await amqp.connect(this.url, {
      noDelay: true,
      clientProperties: { connection_name: 'basalt' },
    });
    coalesceWrites((connection.connection as unknown as { stream: Socket }).stream);
    connection.on('error', (error: Error) =>
      this.options.log.warn({ err: error.message }, 'broker connection error'),
    );
    connection.on('close', () => this.lost(connection, new RpcConnectionError('broker connection closed')));
    try {
      for (const handler of this.upHandlers) await handler(connection);
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
    this.connection = connection;
    this.options.log.info({ url: redactUrl(this.url) }, 'connected to broker');
  }

  private lost(connection: amqp.ChannelModel, error: Error): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    for (const handler of this.downHandlers) handler(error);
    if (this.closing) return;
    this.options.log.error('lost the broker connection; reconnecting');
    this.reconnecting ??= this.reconnectLoop().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private async reconnectLoop(): Promise<void> {
    for (let attempt = 1; !this.closing; attempt++) {
      await sleep(this.backoff(attempt));
      if (this.closing) return;
      try {
        await this.open();
        return;
      } catch (error) {
        this.options.log.warn({ attempt, err: errorMessage(error) }, 'reconnect failed');
      }
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.options.reconnectDelayMaxMs, 100 * 2 ** (attempt - 1));
    return base * (0.75 + Math.random() * 0.25);
  }
}

/**
 * amqplib writes every frame with its own `socket.write`, each a system call — the dearest part of
 * a message on a virtual machine. A handler's reply and its ack, or the publishes of a burst, are
 * written in one turn of the event loop: cork the socket at the first write of a turn and uncork it
 * when the turn ends, so they leave in one `writev`.
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(flush);
    }
    return write(...args);
  }) as Socket['write'];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
