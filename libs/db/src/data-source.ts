import 'reflect-metadata';
import { BasaltError, errorMessage } from '@basalt/errors';
import { redactUrl } from '@basalt/log';
import { DataSource } from 'typeorm';
import { CreateServices1764000000001 } from './migrations/0001-services';
import { CreateVolumes1764000000002 } from './migrations/0002-volumes';
import { AllocateTargetFunction1764000000003 } from './migrations/0003-allocate-target-function';
import { CreateVolumeFunction1764000000004 } from './migrations/0004-create-volume-function';
import { AllocateTargetFromGaps1764000000005 } from './migrations/0005-allocate-target-from-gaps';
import { QuotaLimitsInCheck1764000000006 } from './migrations/0006-quota-limits-in-check';
import { ExtendTo1764000000007 } from './migrations/0007-extend-to';
import { StateChecks1764000000008 } from './migrations/0008-state-checks';
import { TraceSpans1764000000020 } from './migrations/0020-trace-spans';
import { CreateCompute1764000000030 } from './migrations/0030-compute';
import { UserMessages1764000000040 } from './migrations/0040-user-messages';
import { QuotaClasses1764000000041 } from './migrations/0041-quota-classes';
import { VolumePool1764000000042 } from './migrations/0042-volume-pool';
import { MaintenanceStatus1764000000043 } from './migrations/0043-maintenance-status';
import { VolumeTypes1764000000044 } from './migrations/0044-volume-types';
import { VolumeTransfers1764000000045 } from './migrations/0045-volume-transfers';
import { migrationSecretBoxes, SealProviderAuth1764000000050 } from './migrations/0050-seal-provider-auth';
import { MessageRequestId1764000000070 } from './migrations/0070-message-request-id';
import { ServiceUuid1764000000071 } from './migrations/0071-service-uuid';
import { BackfillVolumePool1764000000072 } from './migrations/0072-backfill-volume-pool';
import { Snapshots1764000000073 } from './migrations/0073-snapshots';
import { RecordedAttachments1764000000080 } from './migrations/0080-recorded-attachments';
import { ServiceCapabilities1764000000081 } from './migrations/0081-service-capabilities';
import { ImageService1764000000082 } from './migrations/0082-image-service';
import { PerTypeQuotas1764000000083 } from './migrations/0083-per-type-quotas';
import { InstanceActions1764000000084 } from './migrations/0084-instance-actions';
import { TypeOnlyQuotaCheck1764000000085 } from './migrations/0085-type-only-quota-check';
import { ComputeTagsAndActionUpdates1764000000086 } from './migrations/0086-compute-tags-and-action-updates';
import { ImageTags1764000000087 } from './migrations/0087-image-tags';
import type { SecretBox } from './secret-box';

export const entities: Array<new () => object> = [];
export const migrations = [
  CreateServices1764000000001,
  CreateVolumes1764000000002,
  AllocateTargetFunction1764000000003,
  CreateVolumeFunction1764000000004,
  AllocateTargetFromGaps1764000000005,
  QuotaLimitsInCheck1764000000006,
  ExtendTo1764000000007,
  StateChecks1764000000008,
  TraceSpans1764000000020,
  CreateCompute1764000000030,
  UserMessages1764000000040,
  QuotaClasses1764000000041,
  VolumePool1764000000042,
  MaintenanceStatus1764000000043,
  VolumeTypes1764000000044,
  VolumeTransfers1764000000045,
  SealProviderAuth1764000000050,
  MessageRequestId1764000000070,
  ServiceUuid1764000000071,
  BackfillVolumePool1764000000072,
  Snapshots1764000000073,
  RecordedAttachments1764000000080,
  ServiceCapabilities1764000000081,
  ImageService1764000000082,
  PerTypeQuotas1764000000083,
  InstanceActions1764000000084,
  TypeOnlyQuotaCheck1764000000085,
  ComputeTagsAndActionUpdates1764000000086,
  ImageTags1764000000087,
];

export interface DatabaseOptions {
  readonly url: string;
  readonly poolSize: number;
  /** Seconds an unused pooled connection stays open (pg's default is 10). */
  readonly idleTimeoutSec?: number;
  readonly connectRetries: number;
  /** Seals stored secrets in the migrations that need it (`[volume] secret_keys`). */
  readonly secretBox?: SecretBox;
}

export class DatabaseUnavailableError extends BasaltError {}

export function createDataSource(
  options: Pick<DatabaseOptions, 'url' | 'poolSize' | 'idleTimeoutSec' | 'secretBox'>,
): DataSource {
  const dataSource = new DataSource({
    type: 'postgres',
    ...connectionFields(options.url),
    entities,
    migrations,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    extra: {
      // the URL's password, also when it has none: pg would fall back to PGPASSWORD or ~/.pgpass
      password: () => passwordOf(options.url),
      max: options.poolSize,
      ...(options.idleTimeoutSec === undefined ? {} : { idleTimeoutMillis: options.idleTimeoutSec * 1000 }),
    },
  });
  if (options.secretBox) migrationSecretBoxes.set(dataSource, options.secretBox);
  return dataSource;
}

/**
 * The server, user and database of `[database] connection`, each given to pg explicitly: from a
 * connection string pg would take what the URL leaves out from PGHOST, PGUSER, PGPASSWORD and the
 * like, so credentials could come from somewhere other than the configuration.
 */
function connectionFields(connection: string) {
  const url = new URL(connection);
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!url.hostname || !url.username || !database) {
    throw new DatabaseUnavailableError(
      'database.connection must name the user, host and database (postgres://user@host/db)',
    );
  }
  for (const key of url.searchParams.keys()) {
    if (key !== 'application_name') {
      throw new DatabaseUnavailableError(`database.connection: the parameter "${key}" is not supported`);
    }
  }
  const applicationName = url.searchParams.get('application_name');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 5432,
    username: decodeURIComponent(url.username),
    database,
    ...(applicationName === null ? {} : { applicationName }),
  };
}

const passwordOf = (connection: string) => decodeURIComponent(new URL(connection).password);

/** Opens the pool, retrying a few times; throws a clear error when the database stays unreachable. */
export async function connectDatabase(options: DatabaseOptions): Promise<DataSource> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= options.connectRetries; attempt++) {
    const dataSource = createDataSource(options);
    try {
      return await dataSource.initialize();
    } catch (error) {
      lastError = error;
      if (attempt < options.connectRetries) await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
    }
  }
  throw new DatabaseUnavailableError(
    `cannot reach the database at ${redactUrl(options.url)} after ${options.connectRetries} attempts: ${errorMessage(lastError)}`,
    { retryable: true, cause: lastError },
  );
}

/** Creates the database named in the URL when it does not exist yet (first start on a fresh machine). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name))
    throw new DatabaseUnavailableError(`invalid database name "${name}"`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const ds = createDataSource({ url: admin.toString(), poolSize: 1 });
  await ds.initialize();
  try {
    const rows: unknown[] = await ds.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rows.length === 0) await ds.query(`CREATE DATABASE "${name}"`);
  } finally {
    await ds.destroy();
  }
}
