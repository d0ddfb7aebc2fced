import { hostname } from 'node:os';
import { opt } from './option';

/** Host names and topics become AMQP queue names and tgt/LVM names: keep them to a safe alphabet. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

/**
 * Every option Basalt reads, in one place: `basalt config sample` prints them with their defaults.
 * Section and option names follow nova.conf where nova-volume had an equivalent.
 */
export const schema = {
  DEFAULT: {
    host: opt.string(hostname(), 'Name of this host: the server part of RPC topics and the services row.', {
      pattern: HOST_NAME,
    }),
    storage_availability_zone: opt.string('nova', 'Availability zone this host reports.'),
    log_level: opt.choice(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace'],
      'info',
      'Lowest log level written.',
    ),
    report_interval: opt.number(10, 'Seconds between heartbeats into the services table.', { min: 0.1 }),
    service_down_time: opt.number(60, 'Seconds without a heartbeat after which a service counts as down.', {
      min: 1,
    }),
    shutdown_timeout: opt.number(60, 'Seconds SIGTERM waits for in-flight handlers before exiting.', {
      min: 0,
    }),
  },
  rabbit: {
    transport_url: opt.string('amqp://guest:guest@127.0.0.1:5672/', 'AMQP URL of the broker.', {
      secret: true,
    }),
    control_exchange: opt.string(
      'nova',
      'Topic exchange that RPC requests go through (oslo control_exchange).',
    ),
    amqp_durable_queues: opt.bool(
      true,
      'Declare the control exchange and request queues durable and publish casts persistent.',
    ),
    rabbit_quorum_queue: opt.bool(
      false,
      'Declare request queues as quorum queues (replicated; implies durable).',
    ),
    rabbit_transient_queues_ttl: opt.int(1800, 'Seconds an unused reply or fanout queue lives (x-expires).', {
      min: 1,
    }),
    prefetch_count: opt.int(64, 'Messages a server takes at once (handlers run concurrently up to this).', {
      min: 1,
    }),
    rpc_response_timeout: opt.number(60, 'Seconds a call waits for its reply.', { min: 0.01 }),
    dead_letter_queue: opt.string(
      'basalt.dead_letter',
      'Queue that unparseable or undeliverable requests go to.',
    ),
    connect_retries: opt.int(5, 'Attempts to reach the broker at start before giving up.', { min: 1 }),
    reconnect_delay_max: opt.number(10, 'Upper bound, in seconds, of the reconnect backoff.', { min: 0.1 }),
  },
  database: {
    connection: opt.string('postgres://postgres@127.0.0.1:5432/basalt', 'PostgreSQL URL.', { secret: true }),
    connect_retries: opt.int(5, 'Attempts to reach the database at start before giving up.', { min: 1 }),
    pool_size: opt.int(10, 'Connections per process.', { min: 1 }),
  },
} as const;

export type BasaltConfig = import('./option').ConfigOf<typeof schema>;
