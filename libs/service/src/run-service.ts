import { type BasaltConfig, ConfigError, loadProcessConfig } from '@basalt/config';
import {
  connectDatabase,
  type DataSource,
  heartbeat,
  isTransientDatabaseError,
  registerService,
} from '@basalt/db';
import { errorMessage, isRetryable } from '@basalt/errors';
import { createLogger, type Logger } from '@basalt/log';
import {
  clientMetrics,
  clientTracing,
  loggingMiddleware,
  type Middleware,
  type RpcEndpoint,
  RpcTransport,
  retryMiddleware,
  serverMetrics,
  serverTracing,
} from '@basalt/rpc';
import { type MetricsServer, startMetricsServer, startTracing, type Tracing } from '@basalt/trace';
import { registerClusterGauges } from './cluster-gauges';
import { rpcOptionsFrom } from './rpc-options';

/** What every process is given once the broker and the database are reachable. */
export interface ServiceDeps {
  readonly config: BasaltConfig;
  readonly log: Logger;
  readonly db: DataSource;
  readonly rpc: RpcTransport;
}

/** The parts of one process: the RPC endpoints it serves and what it starts and stops besides. */
export interface ServiceParts {
  /** Served on the definition's topic when present (an empty list still answers oslo's ping). */
  readonly endpoints?: readonly RpcEndpoint[];
  readonly middlewares?: readonly Middleware[];
  start?(): Promise<void>;
  /** Stops taking work from the process's own sources (HTTP, timers); runs before RPC is closed. */
  stop?(): Promise<void>;
}

export interface ServiceDefinition {
  /** The program name in logs and the services table: basalt-volume, basalt-compute, … */
  readonly binary: string;
  /** The RPC topic this process serves (and names its services row with). */
  readonly topic: string;
  /** Whether this process reports the deployment-wide gauges (one process type does). */
  readonly clusterGauges?: boolean;
  build(deps: ServiceDeps): Promise<ServiceParts> | ServiceParts;
}

export const EXIT_CONFIG = 2;
export const EXIT_UNAVAILABLE = 1;

/**
 * The life of a Basalt process: load and check the config, reach the database and the broker
 * (a clear message and a non-zero exit if either stays unreachable), register and heartbeat into
 * `services`, serve `<topic>` / `<topic>.<host>` / fanout, and on SIGTERM stop consuming, let the
 * handlers in flight finish and exit 0.
 */
export async function runService(definition: ServiceDefinition): Promise<void> {
  let config: BasaltConfig;
  try {
    config = loadProcessConfig();
  } catch (error) {
    process.stderr.write(`${definition.binary}: configuration error: ${errorMessage(error)}\n`);
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger({
    name: definition.binary,
    host: config.DEFAULT.host,
    level: config.DEFAULT.log_level,
  });
  let db: DataSource | undefined;
  let rpc: RpcTransport | undefined;
  let tracing: Tracing | undefined;
  let metrics: MetricsServer | undefined;
  try {
    db = await connectDatabase({
      url: config.database.connection,
      poolSize: config.database.pool_size,
      idleTimeoutSec: config.database.idle_timeout,
      connectRetries: config.database.connect_retries,
    });
    if (await db.showMigrations()) {
      throw new Error('the database schema is not up to date: run `basalt db migrate` first');
    }
    tracing = config.trace.enabled
      ? startTracing({
          serviceName: definition.binary,
          host: config.DEFAULT.host,
          db,
          otlpEndpoint: config.trace.otlp_endpoint,
          retentionSec: config.trace.retention,
          buffer: { maxQueueSize: config.trace.max_queue_size },
          onError: (what, error) => log.warn({ err: errorMessage(error) }, `tracing: ${what} failed`),
        })
      : undefined;
    // what every call and cast this process sends passes through, the first the outermost
    rpc = await RpcTransport.connect(rpcOptionsFrom(config, log), [
      ...(tracing ? [clientTracing()] : []),
      ...(config.metrics.enabled ? [clientMetrics()] : []),
    ]);
    if (config.metrics.enabled) {
      if (definition.clusterGauges) registerClusterGauges(db);
      metrics = await startMetricsServer(config.metrics.listen, config.metrics.listen_port);
    }
  } catch (error) {
    log.fatal({ err: errorMessage(error) }, 'cannot start');
    process.stderr.write(`${definition.binary}: ${errorMessage(error)}\n`);
    await metrics?.close().catch(() => undefined);
    await rpc?.close().catch(() => undefined);
    await tracing?.shutdown().catch(() => undefined);
    await db?.destroy().catch(() => undefined);
    process.exit(EXIT_UNAVAILABLE);
  }

  let parts: ServiceParts;
  let beat: NodeJS.Timeout;
  try {
    parts = await definition.build({ config, log, db, rpc });
    const serviceId = await registerService(db, {
      host: config.DEFAULT.host,
      binary: definition.binary,
      topic: definition.topic,
      availabilityZone: config.DEFAULT.storage_availability_zone,
    });
    beat = setInterval(() => {
      heartbeat(db, serviceId).catch((error) => log.warn({ err: errorMessage(error) }, 'heartbeat failed'));
    }, config.DEFAULT.report_interval * 1000);
    if (parts.endpoints) {
      await rpc.serve({
        topic: definition.topic,
        host: config.DEFAULT.host,
        endpoints: parts.endpoints,
        middlewares: [
          // outermost, so the log lines and everything the handler does name its span
          ...(tracing ? [serverTracing(definition.topic, log)] : []),
          ...(config.metrics.enabled ? [serverMetrics(definition.topic)] : []),
          loggingMiddleware(log),
          retryMiddleware({
            attempts: config.DEFAULT.handler_attempts,
            backoffMs: config.DEFAULT.handler_retry_backoff * 1000,
            retryable: (error) => isRetryable(error) || isTransientDatabaseError(error),
          }),
          ...(parts.middlewares ?? []),
        ],
      });
    }
    await parts.start?.();
  } catch (error) {
    log.fatal({ err: errorMessage(error) }, 'cannot start');
    process.stderr.write(`${definition.binary}: ${errorMessage(error)}\n`);
    process.exit(error instanceof ConfigError ? EXIT_CONFIG : EXIT_UNAVAILABLE);
  }
  log.info({ topic: definition.topic, metrics: metrics?.url }, `${definition.binary} started`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new messages, finishing the ones in flight');
    clearInterval(beat);
    try {
      await parts.stop?.();
      await rpc.close(config.DEFAULT.shutdown_timeout * 1000);
      await metrics?.close();
      // the spans of the last handlers go out while the database is still there
      await tracing?.shutdown();
      await db.destroy();
      log.info('stopped');
      process.exit(0);
    } catch (error) {
      log.error({ err: errorMessage(error) }, 'unclean stop');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
