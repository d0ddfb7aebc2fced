#!/usr/bin/env node
import { type BasaltConfig, loadProcessConfig, renderSample, schema } from '@basalt/config';
import {
  AttachmentRepository,
  connectDatabase,
  type DataSource,
  ensureDatabase,
  listServices,
  SecretBox,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { renderTable } from './table';

const USAGE = `usage: basalt [--config-file PATH] COMMAND

commands:
  db migrate        create the database if needed and apply every pending migration
  service list      the services table: host, binary, zone, status, state, last heartbeat
  volume list       every volume of every project: ID, Status, Display Name, Size, Volume Type, Attached to
  config sample     print every option with its default and meaning`;

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

const commands: Record<string, (config: BasaltConfig) => Promise<string>> = {
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
};

async function main(argv: string[]): Promise<void> {
  const words = argv.filter((a, i) => a !== '--config-file' && argv[i - 1] !== '--config-file');
  const command = words.join(' ');
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
  process.stdout.write(`${await run(loadProcessConfig(argv))}\n`);
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`basalt: ${errorMessage(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
