#!/usr/bin/env node
import { type BasaltConfig, loadProcessConfig, renderSample, schema } from '@basalt/config';
import { adminContext } from '@basalt/context';
import { computeRpcApi, type ReconcileReport, volumeRpcApi } from '@basalt/contracts';
import {
  AttachmentRepository,
  connectDatabase,
  type DataSource,
  ensureDatabase,
  ImageRepository,
  listServices,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { createLogger } from '@basalt/log';
import { type RpcClient, RpcTransport } from '@basalt/rpc';
import { rpcOptionsFrom } from '@basalt/service';
import { createImage } from './image-create';
import { renderTable } from './table';

const USAGE = `usage: basalt [--config-file PATH] COMMAND

commands:
  db migrate        create the database if needed and apply every pending migration
  service list      the services table: host, binary, zone, status, state, last heartbeat
  volume list       every volume of every project: ID, Status, Display Name, Size, Volume Type, Attached to
  image create --file PATH --name NAME [--private --project ID]
                    register a disk image (raw or qcow2) that servers boot from
  image list        every image: ID, Name, Status, Disk Format, Size
  reconcile [--dry-run] [--host HOST]
                    have each live worker (or HOST's) compare the database with what its host holds:
                    the orphans it made are removed (--dry-run: only shown), the rest is reported
  config sample     print every option with its default and meaning`;

/**
 * The workers that reconcile their host, by the binary in the services table, and how each is
 * asked over RPC.
 */
const RECONCILERS: Record<
  string,
  (rpc: RpcClient, host: string, dryRun: boolean) => Promise<ReconcileReport>
> = {
  'basalt-volume': (rpc, host, dryRun) =>
    volumeRpcApi(rpc).reconcile(adminContext(), host, { dry_run: dryRun }),
  'basalt-compute': (rpc, host, dryRun) =>
    computeRpcApi(rpc).reconcile(adminContext(), host, { dry_run: dryRun }),
};

class UsageError extends Error {}

/** Runs `fn` on a database connection that is closed afterwards, whatever happens. */
async function withDatabase<T>(config: BasaltConfig, fn: (ds: DataSource) => Promise<T>): Promise<T> {
  const ds = await connectDatabase({
    url: config.database.connection,
    poolSize: 2,
    connectRetries: config.database.connect_retries,
  });
  try {
    return await fn(ds);
  } finally {
    await ds.destroy();
  }
}

/** Runs `fn` with a broker connection that is closed afterwards, whatever happens. */
async function withRpc<T>(config: BasaltConfig, fn: (client: RpcClient) => Promise<T>): Promise<T> {
  const log = createLogger({ name: 'basalt-cli', host: config.DEFAULT.host, level: 'error' });
  const transport = await RpcTransport.connect(rpcOptionsFrom(config, log));
  try {
    return await fn(transport.client);
  } finally {
    await transport.close();
  }
}

const commands: Record<string, (config: BasaltConfig, options: Options) => Promise<string>> = {
  'db migrate': async (config) => {
    await ensureDatabase(config.database.connection);
    const applied = await withDatabase(config, (ds) => ds.runMigrations({ transaction: 'each' }));
    return `applied ${applied.length} migration(s)${applied.map((m) => `\n  ${m.name}`).join('')}`;
  },
  'service list': (config) =>
    withDatabase(config, async (ds) => {
      const services = await listServices(ds, config.DEFAULT.service_down_time);
      return renderTable(
        ['Binary', 'Host', 'Zone', 'Status', 'State', 'Updated At'],
        services.map((s) => [
          s.binary,
          s.host,
          s.availabilityZone,
          s.disabled ? 'disabled' : 'enabled',
          s.up ? 'up' : 'down',
          s.lastHeartbeatAt.toISOString(),
        ]),
      );
    }),
  'volume list': (config) =>
    withDatabase(config, async (ds) => {
      const volumes = await new VolumeRepository(ds).list(
        {},
        { limit: 100_000, sort: [{ key: 'created_at', dir: 'asc' }] },
      );
      const attachments = new AttachmentRepository(ds);
      // by name, as cinder list shows the type
      const types = new Map((await new VolumeTypeRepository(ds).list(undefined)).map((t) => [t.id, t.name]));
      const rows = await Promise.all(
        volumes.map(async (v) => [
          v.id,
          v.status,
          v.displayName ?? 'None',
          String(v.size),
          (v.volumeType && types.get(v.volumeType)) ?? 'None',
          (await attachments.live(v.id))
            .map((a) => a.instanceUuid)
            .filter(Boolean)
            .join(', '),
        ]),
      );
      return renderTable(['ID', 'Status', 'Display Name', 'Size', 'Volume Type', 'Attached to'], rows);
    }),
  'image create': (config, options) =>
    withDatabase(config, async (ds) => {
      const file = options.value('--file');
      const name = options.value('--name');
      const isPrivate = options.flag('--private');
      const project = options.optional('--project') ?? null;
      if (isPrivate && !project) throw new UsageError('--private needs --project ID (the owner)');
      options.done();
      const image = await createImage(ds, config.glance_store.filesystem_store_datadir, {
        file,
        name,
        visibility: isPrivate ? 'private' : 'public',
        owner: project,
      });
      return renderTable(
        ['Field', 'Value'],
        [
          ['id', image.id],
          ['name', image.name ?? ''],
          ['status', image.status],
          ['disk_format', image.diskFormat],
          ['size', String(image.size)],
          ['checksum', image.checksum ?? ''],
        ],
      );
    }),
  'image list': (config, options) =>
    withDatabase(config, async (ds) => {
      options.done();
      const images = await new ImageRepository(ds).listVisible(null);
      return renderTable(
        ['ID', 'Name', 'Status', 'Disk Format', 'Size'],
        images.map((i) => [i.id, i.name ?? '', i.status, i.diskFormat, String(i.size ?? '')]),
      );
    }),
  reconcile: async (config, options) => {
    const flags = { dryRun: options.flag('--dry-run'), host: options.optional('--host') };
    options.done();
    const services = await withDatabase(config, (ds) => listServices(ds, config.DEFAULT.service_down_time));
    const workers = services.filter(
      (s) => s.binary in RECONCILERS && (flags.host === undefined ? s.up : s.host === flags.host),
    );
    if (workers.length === 0) {
      throw new Error(
        flags.host ? `no worker that reconciles runs on host ${flags.host}` : 'no worker is up',
      );
    }
    const reports = await withRpc(config, (rpc) =>
      Promise.all(
        workers.map((w) =>
          (RECONCILERS[w.binary] as (typeof RECONCILERS)[string])(rpc, w.host, flags.dryRun),
        ),
      ),
    );
    const rows = reports.flatMap((r) =>
      r.findings.map((f) => [
        r.host,
        f.kind,
        f.name,
        f.action === 'remove' ? (r.dry_run ? 'would remove' : 'removed') : 'reported',
        f.reason,
      ]),
    );
    const total = `${rows.length} finding(s) on ${reports.length} host(s)${flags.dryRun ? ' (dry run: nothing changed)' : ''}`;
    return rows.length === 0
      ? total
      : `${renderTable(['Host', 'Kind', 'Name', 'Action', 'Reason'], rows)}\n${total}`;
  },
};

/** A command's `--option value` and `--flag` arguments; anything left unread is an error. */
class Options {
  private readonly left: string[];

  constructor(args: readonly string[]) {
    this.left = [...args];
  }

  optional(name: string): string | undefined {
    const at = this.left.indexOf(name);
    if (at < 0) return undefined;
    const value = this.left[at + 1];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
    this.left.splice(at, 2);
    return value;
  }

  value(name: string): string {
    const value = this.optional(name);
    if (value === undefined) throw new UsageError(`${name} is required`);
    return value;
  }

  flag(name: string): boolean {
    const at = this.left.indexOf(name);
    if (at >= 0) this.left.splice(at, 1);
    return at >= 0;
  }

  done(): void {
    if (this.left.length > 0) throw new UsageError(`unexpected argument(s): ${this.left.join(' ')}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const words = argv.filter((a, i) => a !== '--config-file' && argv[i - 1] !== '--config-file');
  const command = words[0] !== undefined && words[0] in commands ? words[0] : words.slice(0, 2).join(' ');
  if (command === 'config sample') {
    process.stdout.write(renderSample(schema));
    return;
  }
  if (command === '' || command === 'help' || command === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const run = commands[command];
  if (!run) throw new UsageError(`unknown command "${words.join(' ')}"\n${USAGE}`);
  const options = new Options(words.slice(command.split(' ').length));
  process.stdout.write(`${await run(loadProcessConfig(argv), options)}\n`);
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`basalt: ${errorMessage(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
