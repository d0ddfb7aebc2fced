import { contextFromWire, type RequestContext } from '@basalt/context';
import { errorMessage } from '@basalt/errors';
import { type Logger, requestLogger } from '@basalt/log';
import type * as amqp from 'amqplib';
import type { AmqpConnection } from './connection';
import { RpcDispatchError } from './errors';
import { compose } from './middleware';
import {
  fanoutExchange,
  type RpcOptions,
  requestQueueArguments,
  requestQueuesDurable,
  transientQueueArguments,
} from './options';
import {
  CONTEXT_PREFIX,
  encodeEnvelope,
  isVersionCompatible,
  MESSAGE_PROPERTIES,
  messageId,
  PING_METHOD,
  parseRequest,
  type RequestMessage,
  serializeFailure,
} from './wire';

/** What a handler receives besides its arguments. */
export interface Invocation {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly context: RequestContext;
  /** A logger whose every line carries the request id and trace of this message. */
  readonly log: Logger;
  readonly kind: 'call' | 'cast';
  readonly version: string;
  readonly namespace?: string;
}

export type Handler = (invocation: Invocation) => Promise<unknown>;
/** Cross-cutting behaviour (logging, tracing, timeouts) wrapped around every handler. */
export type Middleware = (next: Handler) => Handler;

export type EndpointMethod = (args: Record<string, unknown>, invocation: Invocation) => Promise<unknown>;

/** A group of methods at one version, as an oslo endpoint object with its `target`. */
export interface RpcEndpoint {
  readonly namespace?: string;
  readonly version: string;
  readonly methods: Readonly<Record<string, EndpointMethod>>;
}

export interface ServerOptions {
  readonly topic: string;
  /** This host's name: the server also consumes `<topic>.<host>`. */
  readonly host: string;
  readonly endpoints: readonly RpcEndpoint[];
  /**
   * Wrapped around every handler, the first the outermost. A message is parsed and deduplicated
   * before them; the method and version are found, and a contract endpoint checks the arguments,
   * after them, so a refusal passes through every middleware like any failure.
   */
  readonly middlewares?: readonly Middleware[];
}

const DEDUPE_WINDOW = 4096;

/**
 * Consumes `<topic>`, `<topic>.<host>` and a queue on `<topic>_fanout`, declared exactly as
 * oslo.messaging declares them, and dispatches to endpoints by method and version. A message is
 * acknowledged only after its handler finished (and its reply was sent), so a crash redelivers it;
 * a message that cannot be dispatched goes to the dead-letter queue; a repeated `_unique_id` is
 * acknowledged and ignored.
 */
export class RpcServer {
  private channel?: amqp.Channel;
  private consumerTags: string[] = [];
  private readonly fanoutQueue: string;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly seen = new Map<string, true>();
  private readonly dispatch: Handler;
  private stopping = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly rpc: RpcOptions,
    private readonly options: ServerOptions,
  ) {
    this.fanoutQueue = `${options.topic}_fanout_${messageId()}`;
    this.dispatch = compose(options.middlewares ?? [], (invocation) => this.invoke(invocation));
  }

  get queues(): readonly string[] {
    return [this.options.topic, `${this.options.topic}.${this.options.host}`, this.fanoutQueue];
  }

  async start(): Promise<void> {
    this.connection.onDown(() => {
      this.channel = undefined;
      this.consumerTags = [];
    });
    await this.connection.whenUp((connection) => this.setup(connection));
  }

  /** Stops taking messages, waits for the handlers in flight (up to `graceMs`), then closes. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const channel = this.channel;
    if (channel) {
      for (const tag of this.consumerTags) await channel.cancel(tag).catch(() => undefined);
    }
    const drained = Promise.allSettled([...this.inFlight]);
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    this.channel = undefined;
    if (channel) await channel.close().catch(() => undefined);
  }

  private async setup(connection: amqp.ChannelModel): Promise<void> {
    if (this.stopping) return;
    const { topic, host } = this.options;
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    channel.on('close', () => {
      if (this.channel === channel && !this.stopping) this.connection.reset('server channel closed');
    });
    await channel.prefetch(this.rpc.prefetch);
    const durable = requestQueuesDurable(this.rpc);
    await channel.assertExchange(this.rpc.exchange, 'topic', {
      durable: this.rpc.durable,
      autoDelete: false,
    });
    for (const queue of [topic, `${topic}.${host}`]) {
      await channel.assertQueue(queue, {
        durable,
        autoDelete: false,
        arguments: requestQueueArguments(this.rpc),
      });
      await channel.bindQueue(queue, this.rpc.exchange, queue);
    }
    await channel.assertExchange(fanoutExchange(topic), 'fanout', { durable: false, autoDelete: true });
    await channel.assertQueue(this.fanoutQueue, {
      durable: false,
      autoDelete: false,
      arguments: transientQueueArguments(this.rpc),
    });
    await channel.bindQueue(this.fanoutQueue, fanoutExchange(topic), topic);
    await channel.assertQueue(this.rpc.deadLetterQueue, { durable: true, autoDelete: false });
    const tags: string[] = [];
    for (const queue of this.queues) {
      const { consumerTag } = await channel.consume(queue, (msg) => msg && this.track(channel, queue, msg));
      tags.push(consumerTag);
    }
    this.channel = channel;
    this.consumerTags = tags;
    this.rpc.log.info({ topic, host, queues: this.queues }, 'rpc server consuming');
  }

  private track(channel: amqp.Channel, queue: string, msg: amqp.ConsumeMessage): void {
    const work = this.handle(channel, queue, msg).catch((error) =>
      this.rpc.log.error({ err: errorMessage(error), queue }, 'rpc message handling failed'),
    );
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async handle(channel: amqp.Channel, queue: string, msg: amqp.ConsumeMessage): Promise<void> {
    let request: RequestMessage;
    try {
      request = parseRequest(msg.content);
    } catch (error) {
      this.deadLetter(channel, queue, msg, errorMessage(error));
      return;
    }
    // a message without a unique id (an old or foreign sender) cannot be deduplicated, only handled
    const uniqueId =
      typeof request._unique_id === 'string' && request._unique_id ? request._unique_id : undefined;
    if (uniqueId && this.seen.has(uniqueId)) {
      this.rpc.log.info(
        { unique_id: request._unique_id, method: request.method },
        'duplicate message ignored',
      );
      ack(channel, msg);
      return;
    }
    // remembered from the start: copies delivered while the first is still being handled are duplicates too
    if (uniqueId) this.remember(uniqueId);
    const context = contextFromWire(unpackContext(request));
    const kind = request._msg_id ? 'call' : 'cast';
    const invocation = new MessageInvocation(request, context, kind, () =>
      requestLogger(this.rpc.log, context, { method: request.method, topic: this.options.topic }),
    );
    const stopHeartbeat = this.startCallMonitor(channel, request);
    let result: unknown = null;
    let failure: unknown;
    try {
      result = await this.dispatch(invocation);
    } catch (error) {
      failure = error;
    } finally {
      stopHeartbeat();
    }
    if (kind === 'call') this.reply(channel, request, result ?? null, failure);
    if (failure instanceof RpcDispatchError) {
      this.deadLetter(channel, queue, msg, failure.message);
      return;
    }
    if (failure !== undefined) {
      invocation.log.error({ err: errorMessage(failure), kind }, 'handler failed');
    }
    ack(channel, msg);
  }

  /**
   * oslo's dispatch: only endpoints of the message's namespace and of a compatible version are
   * looked in; none such is UnsupportedVersion, a method none of them has is NoSuchMethod.
   */
  private async invoke(invocation: Invocation): Promise<unknown> {
    let compatible = false;
    for (const endpoint of this.options.endpoints) {
      if (endpoint.namespace !== invocation.namespace) continue;
      if (!isVersionCompatible(endpoint.version, invocation.version)) continue;
      compatible = true;
      if (Object.hasOwn(endpoint.methods, invocation.method)) {
        return (endpoint.methods[invocation.method] as EndpointMethod)(invocation.args, invocation);
      }
    }
    if (invocation.method === PING_METHOD) return 'pong';
    if (!compatible) {
      throw new RpcDispatchError(
        'UnsupportedVersion',
        `Endpoint does not support RPC version ${invocation.version}. Attempted method: ${invocation.method}`,
      );
    }
    throw new RpcDispatchError('NoSuchMethod', `Endpoint does not support RPC method ${invocation.method}`);
  }

  private reply(channel: amqp.Channel, request: RequestMessage, result: unknown, failure: unknown): void {
    if (!request._reply_q || !request._msg_id) return;
    const body = encodeEnvelope({
      result: failure === undefined ? result : null,
      failure: failure === undefined ? null : serializeFailure(failure),
      ending: true,
      _msg_id: request._msg_id,
      _unique_id: messageId(),
    });
    try {
      channel.publish('', request._reply_q, body, MESSAGE_PROPERTIES);
    } catch (error) {
      this.rpc.log.warn({ err: errorMessage(error), reply_q: request._reply_q }, 'could not send reply');
    }
  }

  /** oslo's call monitor: when the caller sent `_timeout`, say "still working" at half that interval. */
  private startCallMonitor(channel: amqp.Channel, request: RequestMessage): () => void {
    const seconds = request._timeout;
    if (typeof seconds !== 'number' || seconds <= 0 || !request._reply_q || !request._msg_id)
      return () => undefined;
    const timer = setInterval(
      () => {
        const body = encodeEnvelope({
          result: null,
          failure: null,
          ending: false,
          _msg_id: request._msg_id,
          _unique_id: messageId(),
        });
        try {
          channel.publish('', request._reply_q as string, body, MESSAGE_PROPERTIES);
        } catch {
          clearInterval(timer);
        }
      },
      (seconds * 1000) / 2,
    );
    return () => clearInterval(timer);
  }

  private deadLetter(channel: amqp.Channel, queue: string, msg: amqp.ConsumeMessage, reason: string): void {
    this.rpc.log.error(
      { queue, reason, dead_letter_queue: this.rpc.deadLetterQueue },
      'dead-lettering message',
    );
    try {
      channel.sendToQueue(this.rpc.deadLetterQueue, msg.content, {
        contentType: msg.properties.contentType,
        messageId: msg.properties.messageId,
        persistent: true,
        headers: {
          ...(msg.properties.headers ?? {}),
          'x-basalt-reason': reason,
          'x-basalt-queue': queue,
          'x-basalt-routing-key': msg.fields.routingKey,
        },
      });
    } finally {
      ack(channel, msg);
    }
  }

  private remember(uniqueId: string): void {
    this.seen.set(uniqueId, true);
    if (this.seen.size > DEDUPE_WINDOW) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}

/** An invocation whose request logger is made on first use: a child logger costs more than many handlers. */
class MessageInvocation implements Invocation {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly version: string;
  readonly namespace?: string;
  private logger?: Logger;

  constructor(
    request: RequestMessage,
    readonly context: RequestContext,
    readonly kind: 'call' | 'cast',
    private readonly makeLogger: () => Logger,
  ) {
    this.method = request.method;
    this.args = request.args;
    this.version = request.version ?? '1.0';
    if (request.namespace) this.namespace = request.namespace;
  }

  get log(): Logger {
    this.logger ??= this.makeLogger();
    return this.logger;
  }
}

/** Acknowledges on the channel the message came from; after a reconnect that channel is gone and the broker redelivers. */
function ack(channel: amqp.Channel, msg: amqp.Message): void {
  try {
    channel.ack(msg);
  } catch {
    // channel closed: the message will be redelivered, and handlers are idempotent
  }
}

function unpackContext(request: RequestMessage): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (key.startsWith(CONTEXT_PREFIX)) wire[key.slice(CONTEXT_PREFIX.length)] = value;
  }
  return wire;
}
