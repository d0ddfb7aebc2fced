#!/usr/bin/env node
import { loadProcessConfig, renderSample, schema } from '@basalt/config';
import {
  AttachmentRepository,
  connectDatabase,
  ensureDatabase,
  listServices,
  VolumeRepository,
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
  const config = loadProcessConfig(argv);
  const database = {
    url: config.database.connection,
    poolSize: 2,
    connectRetries: config.database.connect_retries,
  };
  switch (command) {
    case 'db migrate': {
      await ensureDatabase(database.url);
      const ds = await connectDatabase(database);
      try {
        const applied = await ds.runMigrations({ transaction: 'each' });
        process.stdout.write(
          `applied ${applied.length} migration(s)${applied.map((m) => `\n  ${m.name}`).join('')}\n`,
        );
      } finally {
        await ds.destroy();
      }
      return;
    }
    case 'service list': {
      const ds = await connectDatabase(database);
      try {
        const services = await listServices(ds, config.DEFAULT.service_down_time);
        const rows = services.map((s) => [
          s.binary,
          s.host,
          s.availabilityZone,
          s.disabled ? 'disabled' : 'enabled',
          s.up ? 'up' : 'down',
          s.lastHeartbeatAt.toISOString(),
        ]);
        process.stdout.write(
          `${renderTable(['Binary', 'Host', 'Zone', 'Status', 'State', 'Updated At'], rows)}\n`,
        );
      } finally {
        await ds.destroy();
      }
      return;
    }
    case 'volume list': {
      const ds = await connectDatabase(database);
      try {
        const volumes = await new VolumeRepository(ds).list(
          {},
          { limit: 100_000, sort: [{ key: 'created_at', dir: 'asc' }] },
        );
        const attachments = new AttachmentRepository(ds);
        const rows = await Promise.all(
          volumes.map(async (v) => [
            v.id,
            v.status,
            v.displayName ?? 'None',
            String(v.size),
            v.volumeType ?? 'None',
            (await attachments.live(v.id))
              .map((a) => a.instanceUuid)
              .filter(Boolean)
              .join(', '),
          ]),
        );
        process.stdout.write(
          `${renderTable(['ID', 'Status', 'Display Name', 'Size', 'Volume Type', 'Attached to'], rows)}\n`,
        );
      } finally {
        await ds.destroy();
      }
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`basalt: ${errorMessage(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
