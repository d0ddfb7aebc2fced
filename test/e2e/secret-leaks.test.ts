import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type VolumeRpcApi, volumeRpcApi } from '@basalt/contracts';
import { createDataSource, type DataSource, openProviderAuth, SecretBox } from '@basalt/db';
import { type ApiResponse, request, waitForVolume } from '../support/http';
import { testContext } from '../support/rpc';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const connector = { ip: '127.0.0.1', initiator: 'iqn.2026-11.test:leaks', host: 'leak-client' };

/**
 * CHAP secrets live sealed in the database and in clear only where tgt needs them (its 0600
 * config file and tgtd's memory): never in a log line, a command line, an API answer, an error or
 * any other row. Everything runs at the most verbose log level, and the processes' command lines
 * are sampled throughout.
 */
describe('CHAP secrets never leak', () => {
  const stack = new VolumeStack({ extraEnv: { BASALT__DEFAULT__LOG_LEVEL: 'trace' } });
  const token = 'leaker:leakproj';
  let api = '';
  let volumeRpc: VolumeRpcApi;
  let db: DataSource;
  const answers: ApiResponse[] = [];
  const commandLines: string[] = [];
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  const call = async (path: string, init: Parameters<typeof request>[1] = {}) => {
    const res = await request(`${api}${path}`, { token, ...init });
    answers.push(res);
    return res;
  };

  beforeAll(async () => {
    await stack.start();
    api = `${stack.volumeUrl}/v3/leakproj`;
    volumeRpc = volumeRpcApi((await stack.broker.transport(stack.rpc)).client);
    db = createDataSource({ url: stack.database.url, poolSize: 1 });
    await db.initialize();
    sampler = (async () => {
      while (sampling) {
        commandLines.push((await run('ps', ['-eo', 'args'])).stdout);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
  }, 60_000);
  afterAll(async () => {
    sampling = false;
    await sampler;
    await db?.destroy();
    await stack.stop();
  }, 60_000);

  test('through creates, connections, extends, errors and deletes', async () => {
    const ids: string[] = [];
    for (const name of ['leak-a', 'leak-b', 'leak-c']) {
      const created = await call('/volumes', { method: 'POST', body: { volume: { size: 1, name } } });
      expect(created.status).toBe(202);
      ids.push(created.body.volume.id);
    }
    for (const id of ids)
      answers.push({
        status: 200,
        headers: new Headers(),
        body: await waitForVolume(api, token, id, ['available']),
      });

    // what a compute host is handed, and what the database holds, opened with the worker's key
    const box = new SecretBox([stack.secretKey]);
    const passwords: string[] = [];
    for (const id of ids) {
      const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
        volume_id: id,
        connector,
      });
      const password = info.data.auth_password as string;
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      passwords.push(password);
      const [row] = await db.query('SELECT provider_auth FROM volumes WHERE id = $1', [id]);
      expect(row.provider_auth).toMatch(/^enc:v1:test:/);
      expect(row.provider_auth).not.toContain(password);
      expect(openProviderAuth(box, id, row.provider_auth)).toBe(
        `CHAP ${info.data.auth_username} ${password}`,
      );
    }

    // the API's answers and errors about these volumes, as an admin sees them
    const [a, b, c] = ids as [string, string, string];
    await call(`/volumes/${a}`);
    await call('/volumes/detail?all_tenants=1');
    await call(`/volumes/${a}/action`, { method: 'POST', body: { 'os-extend': { new_size: 2 } } });
    await waitForVolume(api, token, a, ['available']);
    await call(`/volumes/${a}/action`, { method: 'POST', body: { 'os-extend': { new_size: 1 } } });
    await call(`/volumes/${b}/action`, { method: 'POST', body: { 'os-reset_status': { status: 'bogus' } } });
    await call(`/volumes/${b}/action`, { method: 'POST', body: { 'os-nothing': {} } });
    await call(`/volumes/${b}`, { method: 'PUT', body: { volume: {} } });
    await call('/volumes?sort=provider_auth:asc');
    await call('/volumes?provider_auth=x');
    await call(`/volumes/${c}`, { method: 'DELETE' });
    await waitForVolume(api, token, c, ['deleted']);
    await volumeRpc
      .terminate_connection(testContext(), stack.host, { volume_id: b, connector })
      .catch(() => undefined);
    const errors = answers.filter((r) => r.status >= 400);
    expect(errors.length).toBeGreaterThanOrEqual(4);

    // a worker restart re-applies every export from the sealed secrets
    await stack.service('volume-worker').stop();
    await stack.startService('volume-worker');
    await stack.service('scheduler').waitForLog(/"method":"update_service_capabilities".*"rpc handled"/);

    sampling = false;
    await sampler;
    expect(commandLines.length).toBeGreaterThan(10);

    const places: Record<string, string> = {
      logs: ['api', 'scheduler', 'volume-worker'].map((s) => readLogs(stack.dir, s)).join('\n'),
      'command lines': commandLines.join('\n'),
      'API answers': answers.map((r) => JSON.stringify(r.body)).join('\n'),
      database: await everyRow(db),
    };
    for (const password of passwords) {
      for (const [place, text] of Object.entries(places))
        expect([place, text.includes(password)]).toEqual([place, false]);
    }
    // the search itself finds a secret where one is meant to be: tgt's own file, readable by root only
    const tgtFiles = readdirSync(stack.volumesDir).map((f) => join(stack.volumesDir, f));
    const tgtText = tgtFiles.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(passwords.filter((p) => tgtText.includes(p))).toHaveLength(2);
    for (const f of tgtFiles) expect(statSync(f).mode & 0o777).toBe(0o600);
  }, 120_000);
});

/** Every log file a service of the stack wrote (restarts included). */
function readLogs(dir: string, service: string): string {
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${service}-`) && f.endsWith('.log'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

/** Every row of every table of the stack's database (spans and messages included, when there are any). */
async function everyRow(db: DataSource): Promise<string> {
  const tables: { table_name: string }[] = await db.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
  );
  expect(tables.map((t) => t.table_name)).toContain('volumes');
  const dumps: string[] = [];
  for (const { table_name } of tables) {
    dumps.push(JSON.stringify(await db.query(`SELECT * FROM "${table_name}"`)));
  }
  return dumps.join('\n');
}
