import type { Logger } from '@basalt/log';

/** How a process talks to the broker; compiled once from the `[rabbit]` config section. */
export interface RpcOptions {
  readonly url: string;
  /** oslo's control_exchange. */
  readonly exchange: string;
  /** oslo's amqp_durable_queues: durable exchange and request queues, persistent casts. */
  readonly durable: boolean;
  /** oslo's rabbit_quorum_queue: request queues of type quorum. */
  readonly quorum: boolean;
  /** oslo's rabbit_transient_queues_ttl, in seconds: x-expires of reply and fanout queues. */
  readonly transientQueueTtlSec: number;
  readonly prefetch: number;
  readonly callTimeoutMs: number;
  readonly deadLetterQueue: string;
  readonly connectRetries: number;
  readonly reconnectDelayMaxMs: number;
  readonly log: Logger;
}

/** Arguments oslo.messaging puts on a request queue under the same settings. */
export function requestQueueArguments(options: Pick<RpcOptions, 'quorum'>): Record<string, unknown> {
  return options.quorum ? { 'x-queue-type': 'quorum' } : {};
}

/** Arguments oslo.messaging puts on reply and fanout queues. */
export function transientQueueArguments(
  options: Pick<RpcOptions, 'transientQueueTtlSec'>,
): Record<string, unknown> {
  return { 'x-expires': options.transientQueueTtlSec * 1000 };
}

/** Quorum queues are always durable; oslo declares them so. */
export function requestQueuesDurable(options: Pick<RpcOptions, 'durable' | 'quorum'>): boolean {
  return options.durable || options.quorum;
}

export const fanoutExchange = (topic: string) => `${topic}_fanout`;
