#!/usr/bin/env node
import { type BasaltConfig, loadProcessConfig, renderSample, schema } from '@basalt/config';
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
  config sample     print every option with its default and meaning`;

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
  const command = words.slice(0, 2).join(' ');
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
  const options = new Options(words.slice(2));
  process.stdout.write(`${await run(loadProcessConfig(argv), options)}\n`);
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`basalt: ${errorMessage(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
