import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The registry of this process: what `/metrics` shows. */
export const registry = new Registry();

/** Seconds, from a fast RPC handler to a slow storage command. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const metrics = {
  rpcSent: new Counter({
    name: 'basalt_rpc_sent_total',
    help: 'RPC messages sent, by topic, method, kind (call or cast) and outcome (ok or the error name).',
    labelNames: ['topic', 'method', 'kind', 'outcome'] as const,
    registers: [registry],
  }),
  rpcSendSeconds: new Histogram({
    name: 'basalt_rpc_send_seconds',
    help: 'Time from sending a message to its reply (calls) or to the broker taking it (casts).',
    labelNames: ['topic', 'method', 'kind'] as const,
    buckets: BUCKETS,
    registers: [registry],
  }),
  rpcHandled: new Counter({
    name: 'basalt_rpc_handled_total',
    help: 'RPC messages handled, by topic, method, kind and outcome (ok or the error name).',
    labelNames: ['topic', 'method', 'kind', 'outcome'] as const,
    registers: [registry],
  }),
  rpcHandlerSeconds: new Histogram({
    name: 'basalt_rpc_handler_seconds',
    help: "Time a message's handler ran.",
    labelNames: ['topic', 'method'] as const,
    buckets: BUCKETS,
    registers: [registry],
  }),
  rpcQueueWaitSeconds: new Histogram({
    name: 'basalt_rpc_queue_wait_seconds',
    help: 'Time a message waited between its sender and its handler (queue and prefetch).',
    labelNames: ['topic', 'method'] as const,
    buckets: BUCKETS,
    registers: [registry],
  }),
  commandSeconds: new Histogram({
    name: 'basalt_command_seconds',
    help: 'Time external commands ran, by command (argv[0]) and outcome (ok or error).',
    labelNames: ['command', 'outcome'] as const,
    buckets: BUCKETS,
    registers: [registry],
  }),
  spansDropped: new Counter({
    name: 'basalt_trace_spans_dropped_total',
    help: "Spans dropped because the exporter's buffer was full, by exporter.",
    labelNames: ['exporter'] as const,
    registers: [registry],
  }),
  spansExported: new Counter({
    name: 'basalt_trace_spans_exported_total',
    help: 'Spans handed to an exporter, by exporter and outcome (ok or the error name).',
    labelNames: ['exporter', 'outcome'] as const,
    registers: [registry],
  }),
};

/** The outcome label of an error: its class name (bounded: Basalt's own error classes). */
export function outcomeOf(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}

/** A gauge whose values are read when scraped (from the database, for one). */
export function collectedGauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  collect: (set: (labels: Record<L, string>, value: number) => void) => Promise<void>,
): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) registry.removeSingleMetric(name);
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    // a source that cannot be read (the database away) leaves this gauge empty, not the scrape failed
    async collect() {
      this.reset();
      await collect((labels, value) => this.set(labels, value)).catch(() => this.reset());
    },
  });
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/** `GET /metrics` in Prometheus' text format on `host:port` (0 picks a free port). */
export async function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
