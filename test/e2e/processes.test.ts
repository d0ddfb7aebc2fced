import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { adminContext } from '@basalt/context';
import { connectDatabase, listServices } from '@basalt/db';
import { createTestDatabase } from '../support/db';
import { SERVICES, ServiceProcess, serviceScript, tempDir } from '../support/processes';
import { BrokerFixture, createVhost, testRpcOptions, uniqueName, waitFor } from '../support/rpc';
import { TgtdFixture } from '../support/tgtd';

describe('the four services as separate processes', () => {
  const broker = new BrokerFixture();
  let rpc = testRpcOptions();
  let vhost: Awaited<ReturnType<typeof createVhost>>;
  const logDir = tempDir('basalt-e2e');
  const host = uniqueName('host');
  const running: ServiceProcess[] = [];
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let tgtd: TgtdFixture;
  const secretKey = `k1:${randomBytes(32).toString('base64')}`;

  const env = (overrides: Record<string, string> = {}) => ({
    BASALT__DEFAULT__HOST: host,
    BASALT__DEFAULT__REPORT_INTERVAL: '0.5',
    BASALT__DATABASE__CONNECTION: database.url,
    BASALT__DATABASE__CONNECT_RETRIES: '2',
    BASALT__RABBIT__TRANSPORT_URL: rpc.url,
    BASALT__RABBIT__CONTROL_EXCHANGE: rpc.exchange,
    BASALT__RABBIT__DEAD_LETTER_QUEUE: rpc.deadLetterQueue,
    BASALT__RABBIT__CONNECT_RETRIES: '2',
    BASALT__VOLUME__VOLUME_DRIVER: 'file',
    BASALT__VOLUME__VOLUMES_PATH: `${logDir}/volumes`,
    BASALT__VOLUME__VOLUMES_DIR: `${logDir}/tgt`,
    BASALT__VOLUME__TGT_CONTROL_PORT: String(tgtd.controlPort),
    BASALT__VOLUME__SECRET_KEYS: secretKey,
    ...overrides,
  });

  beforeAll(async () => {
    // the services consume the fixed queues scheduler, volume and compute: give them a vhost of their own
    vhost = await createVhost();
    rpc = testRpcOptions({ url: vhost.url });
    database = await createTestDatabase();
    tgtd = await TgtdFixture.start();
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await broker.cleanup();
    await vhost.drop();
    await database.drop();
    await tgtd?.stop();
    rmSync(logDir, { recursive: true, force: true });
  });

  test('each starts, registers and heartbeats, answers ping on its topic, and exits 0 on SIGTERM', async () => {
    for (const name of SERVICES) running.push(new ServiceProcess(name, serviceScript(name), env(), logDir));
    await Promise.all(running.map((p) => p.waitForLog(/started"/)));

    const client = (await broker.transport(rpc)).client;
    for (const topic of ['scheduler', 'volume', 'compute']) {
      expect(await client.call(adminContext(), { topic, server: host }, 'oslo_rpc_server_ping', {})).toBe(
        'pong',
      );
    }

    const ds = await connectDatabase({ url: database.url, poolSize: 1, connectRetries: 1 });
    try {
      const first = await waitFor(async () => {
        const rows = (await listServices(ds, 5)).filter((s) => s.host === host);
        return rows.length === 4 && rows.every((r) => r.up) ? rows : undefined;
      }, 'four services up');
      expect(first.map((s) => s.binary).sort()).toEqual([
        'basalt-api',
        'basalt-compute',
        'basalt-scheduler',
        'basalt-volume',
      ]);
      const counts = await ds.query('SELECT report_count FROM services WHERE host = $1', [host]);
      await waitFor(async () => {
        const later = await ds.query('SELECT report_count FROM services WHERE host = $1', [host]);
        return (
          later.every((r: { report_count: number }, i: number) => r.report_count > counts[i].report_count) ||
          undefined
        );
      }, 'heartbeats to advance');
    } finally {
      await ds.destroy();
    }

    const codes = await Promise.all(running.map((p) => p.stop()));
    expect(codes).toEqual([0, 0, 0, 0]);
    for (const p of running) expect(p.log).toContain('"msg":"stopped"');
  }, 60_000);

  test('a process that cannot reach the broker or the database says so and exits non-zero', async () => {
    const noBroker = new ServiceProcess(
      'no-broker',
      serviceScript('scheduler'),
      env({ BASALT__RABBIT__TRANSPORT_URL: 'amqp://guest:guest@127.0.0.1:1/' }),
      logDir,
    );
    expect(await noBroker.exited).toBe(1);
    expect(noBroker.log).toContain('cannot reach the message broker at amqp://guest:***@127.0.0.1:1/');
    expect(noBroker.log).not.toContain('guest:guest');

    const noDatabase = new ServiceProcess(
      'no-db',
      serviceScript('volume-worker'),
      env({ BASALT__DATABASE__CONNECTION: 'postgres://postgres@127.0.0.1:1/basalt' }),
      logDir,
    );
    expect(await noDatabase.exited).toBe(1);
    expect(noDatabase.log).toContain('cannot reach the database at postgres://postgres@127.0.0.1:1/basalt');

    const badConfig = new ServiceProcess(
      'bad-config',
      serviceScript('compute-worker'),
      env({ BASALT__RABBIT__PREFETCH_COUNT: 'lots' }),
      logDir,
    );
    expect(await badConfig.exited).toBe(2);
    expect(badConfig.log).toContain('rabbit.prefetch_count: "lots" is not an integer');

    // no key to seal CHAP secrets with, or a key that is not 32 bytes: a configuration error, named
    for (const [keys, message] of [
      ['', 'volume.secret_keys is empty'],
      [`k1:${randomBytes(16).toString('base64')}`, 'volume.secret_keys: secret key "k1" must be 32 bytes'],
    ] as const) {
      const noKey = new ServiceProcess(
        'no-key',
        serviceScript('volume-worker'),
        env({ BASALT__VOLUME__SECRET_KEYS: keys }),
        logDir,
      );
      expect(await noKey.exited).toBe(2);
      expect(noKey.log).toContain(message);
    }

    // a policy file naming a rule that does not exist, or a check string that does not parse
    for (const [rules, message] of [
      ['"volume:crate": "role:admin"', 'policy: unknown rule "volume:crate"'],
      [
        '"volume:create": "role:admin or"',
        'policy: rule "volume:create": "role:admin or" ends where a check was expected',
      ],
    ] as const) {
      const file = `${logDir}/policy.yaml`;
      writeFileSync(file, `${rules}\n`);
      const badPolicy = new ServiceProcess(
        'bad-policy',
        serviceScript('api'),
        env({
          BASALT__OSLO_POLICY__POLICY_FILE: file,
          BASALT__API__OSAPI_VOLUME_LISTEN_PORT: '0',
          BASALT__API__IDENTITY_LISTEN_PORT: '0',
        }),
        logDir,
      );
      expect(await badPolicy.exited).toBe(2);
      expect(badPolicy.log).toContain(message);
    }

    const noVolumeGroup = new ServiceProcess(
      'no-vg',
      serviceScript('volume-worker'),
      env({ BASALT__VOLUME__VOLUME_DRIVER: 'lvm', BASALT__VOLUME__VOLUME_GROUP: 'basalt-no-such-vg' }),
      logDir,
    );
    expect(await noVolumeGroup.exited).toBe(1);
    expect(noVolumeGroup.log).toContain('volume group basalt-no-such-vg does not exist');

    // a control port no tgtd listens on: the worker cannot export anything, so it does not start
    const noTgtd = new ServiceProcess(
      'no-tgtd',
      serviceScript('volume-worker'),
      env({ BASALT__VOLUME__TGT_CONTROL_PORT: String(tgtd.controlPort + 1000) }),
      logDir,
    );
    expect(await noTgtd.exited).toBe(1);
    expect(noTgtd.log).toContain(`cannot reach tgtd at /var/run/tgtd/socket.${tgtd.controlPort + 1000}`);
  }, 60_000);
});
