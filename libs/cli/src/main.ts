#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
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
  SecretBox,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { createLogger } from '@basalt/log';
import { type RpcClient, RpcTransport } from '@basalt/rpc';
import { rpcOptionsFrom } from '@basalt/service';
import { TraceStore } from '@basalt/trace';
import { createImage } from './image-create';
import { renderTable } from './table';
import { renderSlowest, renderTraceHtml, renderTraceText } from './trace-view';

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
  config sample     print every option with its default and meaning
  trace REQUEST_ID [--html FILE]
                    every span the request caused, in every process, as an indented tree
                    (host, process, operation, duration, outcome); --html writes a waterfall page
  trace --slowest N [--since DURATION]
                    the N longest traces begun in the last DURATION (30s, 15m, 1h, 2d; default 1h)`;

/** Options given after the command words. */
interface Flags {
  readonly dryRun: boolean;
  readonly host?: string;
  /** `image create`'s: the file, the name, and a private image's owner. */
  readonly file?: string;
  readonly name?: string;
  readonly project?: string;
  readonly private: boolean;
}

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
  const keys = config.volume.secret_keys;
  const ds = await connectDatabase({
    url: config.database.connection,
    poolSize: 2,
    connectRetries: config.database.connect_retries,
    // the migration sealing CHAP secrets stored in clear needs the key
    ...(keys.length > 0 ? { secretBox: new SecretBox(keys) } : {}),
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

const commands: Record<string, (config: BasaltConfig, flags: Flags) => Promise<string>> = {
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
      const types = new Map(
        (
          await new VolumeTypeRepository(ds).list(
            undefined,
            {},
            { limit: 100_000, sort: [{ key: 'name', dir: 'asc' }] },
          )
        ).map((t) => [t.id, t.name]),
      );
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
  'image create': (config, flags) =>
    withDatabase(config, async (ds) => {
      if (!flags.file || !flags.name) throw new UsageError('image create needs --file PATH and --name NAME');
      if (flags.private && !flags.project) throw new UsageError('--private needs --project ID (the owner)');
      const image = await createImage(ds, config.glance_store.filesystem_store_datadir, {
        file: flags.file,
        name: flags.name,
        visibility: flags.private ? 'private' : 'public',
        owner: flags.project ?? null,
      });
      return renderTable(
        ['Field', 'Value'],
        [
          ['id', image.id],
          ['name', image.name ?? ''],
          ['status', image.status],
          ['disk_format', image.diskFormat ?? ''],
          ['size', String(image.size)],
          ['checksum', image.checksum ?? ''],
        ],
      );
    }),
  'image list': (config) =>
    withDatabase(config, async (ds) => {
      const images = await new ImageRepository(ds).listVisible({ projectId: null, isAdmin: true });
      return renderTable(
        ['ID', 'Name', 'Status', 'Disk Format', 'Size'],
        images.map((i) => [i.id, i.name ?? '', i.status, i.diskFormat ?? '', String(i.size ?? '')]),
      );
    }),
  reconcile: async (config, flags) => {
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

/** Options that take a value, by their name in `Flags`. */
const VALUED = { '--host': 'host', '--file': 'file', '--name': 'name', '--project': 'project' } as const;

/** Splits the options (`--dry-run`, `--private` and those of VALUED) from the command words. */
function parseFlags(words: string[]): { command: string; flags: Flags } {
  const rest: string[] = [];
  const values: { -readonly [K in (typeof VALUED)[keyof typeof VALUED]]?: string } = {};
  let dryRun = false;
  let isPrivate = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '--dry-run') dryRun = true;
    else if (word === '--private') isPrivate = true;
    else if (word in VALUED) {
      const value = words[++i];
      if (!value) throw new UsageError(`${word} needs a value`);
      values[VALUED[word as keyof typeof VALUED]] = value;
    } else if (word.startsWith('--') && word !== '--help')
      throw new UsageError(`unknown option ${word}\n${USAGE}`);
    else rest.push(word);
  }
  return { command: rest.join(' '), flags: { dryRun, private: isPrivate, ...values } };
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `30s`, `15m`, `1h`, `2d` in seconds. */
function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) throw new UsageError(`"${text}" is not a duration like 30s, 15m, 1h or 2d`);
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

/** `basalt trace …`: options are `--name value` pairs after the request id, if any. */
async function trace(config: BasaltConfig, args: readonly string[]): Promise<string> {
  const options = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const value = args[++i];
    if (!['--html', '--slowest', '--since'].includes(arg) || value === undefined) {
      throw new UsageError(
        `trace: ${value === undefined ? `${arg} needs a value` : `unknown option ${arg}`}\n${USAGE}`,
      );
    }
    options.set(arg, value);
  }
  const slowest = options.get('--slowest');
  if (slowest !== undefined) {
    if (!/^[1-9]\d{0,3}$/.test(slowest))
      throw new UsageError(`--slowest takes a count from 1 to 9999, not "${slowest}"`);
    if (positional.length > 0 || options.has('--html'))
      throw new UsageError(`--slowest takes no request id nor --html\n${USAGE}`);
    const since = parseDuration(options.get('--since') ?? '1h');
    return withDatabase(config, async (ds) =>
      renderSlowest(await new TraceStore(ds).slowest(Number(slowest), since)),
    );
  }
  if (positional.length !== 1 || options.has('--since'))
    throw new UsageError(`trace: one request id, please\n${USAGE}`);
  const requestId = positional[0] as string;
  const found = await withDatabase(config, (ds) => new TraceStore(ds).forRequest(requestId));
  if (found.traces.length === 0) throw new Error(`no trace of request ${requestId} was found`);
  const html = options.get('--html');
  if (html === undefined) return renderTraceText(found);
  writeFileSync(html, renderTraceHtml(found));
  return `wrote ${html}`;
}

async function main(argv: string[]): Promise<void> {
  const words = argv.filter((a, i) => a !== '--config-file' && argv[i - 1] !== '--config-file');
  if (words[0] === 'trace') {
    process.stdout.write(`${await trace(loadProcessConfig(argv), words.slice(1))}\n`);
    return;
  }
  const { command, flags } = parseFlags(words);
  if (command === 'config sample') {
    process.stdout.write(renderSample(schema));
    return;
  }
  if (command === '' || command === 'help' || command === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const run = commands[command];
  if (!run) throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  if ((flags.dryRun || flags.host) && command !== 'reconcile')
    throw new UsageError(`--dry-run and --host go with reconcile\n${USAGE}`);
  if ((flags.file || flags.name || flags.project || flags.private) && command !== 'image create')
    throw new UsageError(`--file, --name, --private and --project go with image create\n${USAGE}`);
  process.stdout.write(`${await run(loadProcessConfig(argv), flags)}\n`);
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`basalt: ${errorMessage(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
