import type { BasaltConfig } from '@basalt/config';
import type { Logger } from '@basalt/log';
import type { RpcOptions } from '@basalt/rpc';

/** The broker settings of a process, compiled from its `[rabbit]` section. */
export function rpcOptionsFrom(config: BasaltConfig, log: Logger): RpcOptions {
  const r = config.rabbit;
  return {
    url: r.transport_url,
    exchange: r.control_exchange,
    durable: r.amqp_durable_queues,
    quorum: r.rabbit_quorum_queue,
    transientQueueTtlSec: r.rabbit_transient_queues_ttl,
    prefetch: r.prefetch_count,
    callTimeoutMs: r.rpc_response_timeout * 1000,
    deadLetterQueue: r.dead_letter_queue,
    connectRetries: r.connect_retries,
    reconnectDelayMaxMs: r.reconnect_delay_max * 1000,
    log,
  };
}
