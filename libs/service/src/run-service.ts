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
  loggingMiddleware,
  type Middleware,
  type RpcEndpoint,
  RpcTransport,
  retryMiddleware,
} from '@basalt/rpc';
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
    rpc = await RpcTransport.connect(rpcOptionsFrom(config, log));
  } catch (error) {
    log.fatal({ err: errorMessage(error) }, 'cannot start');
    process.stderr.write(`${definition.binary}: ${errorMessage(error)}\n`);
    await rpc?.close().catch(() => undefined);
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
  log.info({ topic: definition.topic }, `${definition.binary} started`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new messages, finishing the ones in flight');
    clearInterval(beat);
    try {
      await parts.stop?.();
      await rpc.close(config.DEFAULT.shutdown_timeout * 1000);
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
