import { childContext, type RequestContext } from '@basalt/context';
import type * as amqp from 'amqplib';
import type { AmqpConnection } from './connection';
import { RpcConnectionError, RpcTimeoutError, RpcUndeliverableError } from './errors';
import { compose } from './middleware';
import { fanoutExchange, type RpcOptions, transientQueueArguments } from './options';
import {
  contextFields,
  deserializeFailure,
  encodeEnvelope,
  MESSAGE_PROPERTIES,
  messageId,
  parseReply,
} from './wire';

/** Where a message goes: a topic, optionally one server of it, or every server (fanout). */
export interface Target {
  readonly topic: string;
  readonly server?: string;
  /** The version the method needs; the server must implement the same major and a minor ≥ it. */
  readonly version?: string;
  readonly namespace?: string;
  readonly fanout?: boolean;
}

export interface CallOptions {
  readonly timeoutMs?: number;
}

/** A call or cast on its way out, as client middlewares see it. */
export interface OutgoingMessage {
  readonly kind: 'call' | 'cast';
  /** Already the message's own context: the caller's request in a new span. */
  readonly context: RequestContext;
  readonly target: Target;
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly options: CallOptions;
}

/** Sends one message; a call resolves with the result, a cast once the broker has it. */
export type Send = (message: OutgoingMessage) => Promise<unknown>;
/** Cross-cutting behaviour (tracing, metrics) wrapped around every call and cast a process sends. */
export type ClientMiddleware = (next: Send) => Send;

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  timeoutMs: number;
  describe: string;
}

interface PendingCast {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly uniqueId: string;
  readonly fanout: boolean;
  readonly describe: string;
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** Publishes not confirmed so far (channel closed, or the broker said no). */
  failures: number;
  settled: boolean;
}

/** A cast the broker refused (nack) this many times while connected is given up. */
const MAX_CAST_NACKS = 3;

/**
 * Sends casts and calls in oslo.messaging's format. Calls go on a plain channel as transient,
 * mandatory messages that expire with the call; replies come back on one `reply_<hex>` queue per
 * process. Casts go on a confirm channel, persistent when queues are durable, and are held in
 * memory while the broker is away and published once it is back.
 *
 * Every message carries its own context: the caller's request continued in a new span (a child
 * of the caller's), made here so no call site has to. Then the middlewares run, the first given
 * the outermost (it sees the message first and its outcome last), and the last of them publishes.
 */
export class RpcClient {
  readonly replyQueue = `reply_${messageId()}`;
  private callChannel?: amqp.Channel;
  private castChannel?: amqp.ConfirmChannel;
  private readonly calls = new Map<string, PendingCall>();
  private readonly casts: PendingCast[] = [];
  private readonly returned = new Set<string>();
  private readonly declaredExchanges = new Set<string>();
  private readonly send: Send;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: RpcOptions,
    middlewares: readonly ClientMiddleware[] = [],
  ) {
    this.send = compose(middlewares, (message) =>
      message.kind === 'call' ? this.publishCall(message) : this.publishCast(message),
    );
  }

  async start(): Promise<void> {
    this.connection.onDown((error) => {
      this.callChannel = undefined;
      this.castChannel = undefined;
      this.declaredExchanges.clear();
      for (const [msgId, call] of this.calls) {
        this.settleCall(
          msgId,
          undefined,
          new RpcConnectionError(`${call.describe}: ${error.message}`, error),
        );
      }
    });
    await this.connection.whenUp((connection) => this.setup(connection));
  }

  /** Waits for the method's result; rejects with the remote error, a timeout or a connection error. */
  call(
    ctx: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<unknown> {
    return this.send({ kind: 'call', context: childContext(ctx), target, method, args, options });
  }

  /** Resolves once the broker has taken the message (publisher confirm); survives broker restarts. */
  async cast(
    ctx: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<void> {
    await this.send({ kind: 'cast', context: childContext(ctx), target, method, args, options });
  }

  private publishCall({ context, target, method, args, options }: OutgoingMessage): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs;
    const msgId = messageId();
    const uniqueId = messageId();
    const describe = `call ${target.topic}${target.server ? `.${target.server}` : ''}.${method}`;
    const channel = this.callChannel;
    if (target.fanout) return Promise.reject(new TypeError(`${describe}: a fanout target cannot be called`));
    if (!channel) return Promise.reject(new RpcConnectionError(`${describe}: not connected to the broker`));
    const body = encodeEnvelope({
      ...this.message(context, target, method, args, uniqueId),
      _msg_id: msgId,
      _reply_q: this.replyQueue,
      _timeout: null,
    });
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.settleCall(msgId, undefined, new RpcTimeoutError(`${describe}: no reply in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.calls.set(msgId, { resolve, reject, timer, timeoutMs, describe });
      try {
        channel.publish(this.options.exchange, routingKey(target), body, {
          ...MESSAGE_PROPERTIES,
          messageId: msgId,
          expiration: String(Math.ceil(timeoutMs)),
          deliveryMode: 1,
          mandatory: true,
        });
      } catch (error) {
        this.settleCall(msgId, undefined, new RpcConnectionError(`${describe}: publish failed`, error));
      }
    });
  }

  private publishCast({ context, target, method, args, options }: OutgoingMessage): Promise<void> {
    const uniqueId = messageId();
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs;
    const describe = `cast ${target.topic}${target.fanout ? '_fanout' : target.server ? `.${target.server}` : ''}.${method}`;
    return new Promise<void>((resolve, reject) => {
      const cast: PendingCast = {
        exchange: target.fanout ? fanoutExchange(target.topic) : this.options.exchange,
        routingKey: target.fanout ? '' : routingKey(target),
        body: encodeEnvelope(this.message(context, target, method, args, uniqueId)),
        uniqueId,
        fanout: !!target.fanout,
        describe,
        resolve,
        reject,
        failures: 0,
        settled: false,
        timer: setTimeout(() => {
          cast.settled = true;
          const queued = this.casts.indexOf(cast);
          if (queued >= 0) this.casts.splice(queued, 1);
          reject(new RpcTimeoutError(`${describe}: broker did not take the message in ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.sendCast(cast);
    });
  }

  private message(
    ctx: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    uniqueId: string,
  ): Record<string, unknown> {
    return {
      method,
      args,
      ...(target.version ? { version: target.version } : {}),
      ...(target.namespace ? { namespace: target.namespace } : {}),
      _unique_id: uniqueId,
      ...contextFields(ctx),
    };
  }

  private async setup(connection: amqp.ChannelModel): Promise<void> {
    const callChannel = await connection.createChannel();
    const castChannel = await connection.createConfirmChannel();
    for (const channel of [callChannel, castChannel]) {
      channel.on('error', () => undefined);
      channel.on('close', () => this.connection.reset('client channel closed'));
    }
    // oslo's reply queue: bound to the default exchange, transient, expiring when unused
    await callChannel.assertQueue(this.replyQueue, {
      durable: false,
      autoDelete: false,
      arguments: transientQueueArguments(this.options),
    });
    for (const channel of [callChannel, castChannel]) {
      await channel.assertExchange(this.options.exchange, 'topic', {
        durable: this.options.durable,
        autoDelete: false,
      });
    }
    await callChannel.consume(this.replyQueue, (msg) => msg && this.onReply(msg), { noAck: true });
    callChannel.on('return', (msg: amqp.Message) => {
      const msgId = msg.properties.messageId as string | undefined;
      if (msgId)
        this.settleCall(msgId, undefined, new RpcUndeliverableError('no server is listening on that topic'));
    });
    castChannel.on('return', (msg: amqp.Message) => {
      const id = msg.properties.messageId as string | undefined;
      if (id) this.returned.add(id);
    });
    this.callChannel = callChannel;
    this.castChannel = castChannel;
    for (const cast of this.casts.splice(0)) this.sendCast(cast);
  }

  private sendCast(cast: PendingCast): void {
    if (cast.settled) return;
    const channel = this.castChannel;
    if (!channel) {
      this.casts.push(cast);
      return;
    }
    if (cast.fanout && !this.declaredExchanges.has(cast.exchange)) {
      // like oslo, declare a fanout exchange before the first publish to it
      channel.assertExchange(cast.exchange, 'fanout', { durable: false, autoDelete: true }).then(
        () => {
          this.declaredExchanges.add(cast.exchange);
          this.sendCast(cast);
        },
        () => this.casts.push(cast),
      );
      return;
    }
    try {
      channel.publish(
        cast.exchange,
        cast.routingKey,
        cast.body,
        {
          ...MESSAGE_PROPERTIES,
          messageId: cast.uniqueId,
          persistent: this.options.durable,
          // a fanout with no listeners is normal; a direct cast to nobody is an error worth knowing
          mandatory: !cast.fanout,
        },
        (error) => this.confirmed(cast, error),
      );
    } catch {
      this.casts.push(cast);
    }
  }

  private confirmed(cast: PendingCast, error: unknown): void {
    if (cast.settled) return;
    if (error) {
      cast.failures++;
      if (!this.castChannel) {
        // the channel closed before the broker confirmed: publish again once reconnected
        this.casts.push(cast);
      } else if (cast.failures < MAX_CAST_NACKS) {
        this.sendCast(cast);
      } else {
        cast.settled = true;
        clearTimeout(cast.timer);
        cast.reject(
          new RpcConnectionError(`${cast.describe}: the broker refused the message ${cast.failures} times`),
        );
      }
      return;
    }
    cast.settled = true;
    clearTimeout(cast.timer);
    if (this.returned.delete(cast.uniqueId)) {
      cast.reject(new RpcUndeliverableError(`${cast.describe}: no server is listening on that topic`));
    } else {
      cast.resolve();
    }
  }

  private onReply(msg: amqp.ConsumeMessage): void {
    let reply: ReturnType<typeof parseReply>;
    try {
      reply = parseReply(msg.content);
    } catch (error) {
      this.options.log.warn({ err: String(error) }, 'dropping unreadable reply');
      return;
    }
    const call = this.calls.get(reply._msg_id);
    if (!call) return; // a late reply to a call that already timed out
    if (!reply.ending && reply.result === null && reply.failure === null) {
      // call-monitor heartbeat: the server is still working on it
      clearTimeout(call.timer);
      call.timer = setTimeout(
        () => this.settleCall(reply._msg_id, undefined, new RpcTimeoutError(`${call.describe}: no reply`)),
        call.timeoutMs,
      );
      return;
    }
    if (reply.failure) this.settleCall(reply._msg_id, undefined, deserializeFailure(reply.failure));
    else this.settleCall(reply._msg_id, reply.result);
  }

  private settleCall(msgId: string, result: unknown, error?: Error): void {
    const call = this.calls.get(msgId);
    if (!call) return;
    this.calls.delete(msgId);
    clearTimeout(call.timer);
    if (error) call.reject(error);
    else call.resolve(result);
  }

  /** Fails every call still waiting (used when the process stops). */
  stop(): void {
    for (const [msgId, call] of this.calls) {
      this.settleCall(msgId, undefined, new RpcConnectionError(`${call.describe}: client stopped`));
    }
    for (const cast of this.casts.splice(0)) {
      cast.settled = true;
      clearTimeout(cast.timer);
      cast.reject(new RpcConnectionError(`${cast.describe}: client stopped before the broker took it`));
    }
  }
}

export const routingKey = (target: Target) =>
  target.server ? `${target.topic}.${target.server}` : target.topic;
