import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDataSource } from '@basalt/db';
import { createTestDatabase } from './db';
import { testImage } from './guest';
import { LibvirtFixture } from './libvirt';
import { freePort } from './ports';
import { ROOT, type ServiceName, ServiceProcess, serviceScript, tempDir } from './processes';
import { BrokerFixture, createVhost, testRpcOptions, uniqueName } from './rpc';
import { TgtdFixture } from './tgtd';

export interface StackOptions {
  readonly authStrategy?: 'noauth' | 'builtin' | 'keystone';
  readonly extraEnv?: Record<string, string>;
  /** Also run a compute worker (real libvirtd, QEMU under TCG) and register the test image. */
  readonly compute?: boolean;
  /** A PostgreSQL server of the test's own (else the machine's): the stack's database is made there. */
  readonly postgresUrl?: string;
  /** A broker of the test's own, used as it is (else a vhost of the machine's broker). */
  readonly brokerUrl?: string;
}

const run = promisify(execFile);

export const TEST_USERS =
  'admin:adminpass:admin:admin,alice:alicepass:demo:member,bob:bobpass:other:member,carol:carolpass:demo:reader';

/**
 * api + scheduler + volume-worker as separate OS processes, on a database, control exchange,
 * tgtd and directories of their own: what a user runs, isolated for one test file.
 */
export class VolumeStack {
  readonly broker = new BrokerFixture();
  rpc = testRpcOptions();
  private vhost?: Awaited<ReturnType<typeof createVhost>>;
  readonly host = uniqueName('vhost');
  readonly dir = tempDir('basalt-stack');
  readonly volumesPath = join(this.dir, 'volumes');
  readonly volumesDir = join(this.dir, 'tgt');
  private readonly processes = new Map<ServiceName, ServiceProcess>();
  private readonly extraApis: ServiceProcess[] = [];
  /** Processes started so far: each gets a log file of its own. */
  private started = 0;
  database!: Awaited<ReturnType<typeof createTestDatabase>>;
  tgtd!: TgtdFixture;
  /** The key the worker seals CHAP secrets with. */
  readonly secretKey = `test:${randomBytes(32).toString('base64')}`;
  volumeUrl = '';
  identityUrl = '';
  computeUrl = '';
  imageUrl = '';
  private imagePort = 0;
  private identityPort = 0;
  /** The shared libvirtd, with a domain-name prefix of this stack's own (compute stacks). */
  libvirt?: LibvirtFixture;
  readonly instancesPath = join(this.dir, 'instances');
  readonly imagesPath = join(this.dir, 'images');
  readonly initiatorIqn = `iqn.2010-10.org.basalt:${this.host.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`;
  /** The image registered with `basalt image create` (compute stacks). */
  imageId = '';

  constructor(private readonly options: StackOptions = {}) {}

  env(): Record<string, string> {
    return {
      BASALT__DEFAULT__HOST: this.host,
      BASALT__DEFAULT__REPORT_INTERVAL: '0.5',
      BASALT__DEFAULT__SHUTDOWN_TIMEOUT: '5',
      BASALT__DEFAULT__PERIODIC_INTERVAL: '0.5',
      BASALT__DATABASE__CONNECTION: this.database.url,
      BASALT__RABBIT__TRANSPORT_URL: this.rpc.url,
      BASALT__RABBIT__CONTROL_EXCHANGE: this.rpc.exchange,
      BASALT__RABBIT__DEAD_LETTER_QUEUE: this.rpc.deadLetterQueue,
      BASALT__RABBIT__RPC_RESPONSE_TIMEOUT: '10',
      BASALT__API__OSAPI_VOLUME_LISTEN_PORT: '0',
      BASALT__API__IDENTITY_LISTEN_PORT: String(this.identityPort),
      BASALT__API__AUTH_STRATEGY: this.options.authStrategy ?? 'noauth',
      // the limiter has a test of its own (request-limits); elsewhere a test's own bursts are not the point
      BASALT__API__RATE_LIMIT: '0',
      BASALT__IDENTITY__USERS: TEST_USERS,
      BASALT__IDENTITY__TOKEN_SECRET: 'test-token-secret',
      BASALT__VOLUME__VOLUME_DRIVER: 'file',
      BASALT__VOLUME__VOLUMES_PATH: this.volumesPath,
      BASALT__VOLUME__IMAGE_CONVERSION_DIR: join(this.dir, 'conversion'),
      BASALT__VOLUME__VOLUMES_DIR: this.volumesDir,
      BASALT__VOLUME__TGT_CONTROL_PORT: String(this.tgtd.controlPort),
      BASALT__VOLUME__ISCSI_PORT: String(this.tgtd.port),
      BASALT__VOLUME__REPORT_CAPABILITIES_INTERVAL: '0.5',
      BASALT__VOLUME__EXPORT_CHECK_INTERVAL: '0.5',
      BASALT__VOLUME__SECRET_KEYS: this.secretKey,
      BASALT__API__OSAPI_COMPUTE_LISTEN_PORT: '0',
      // chosen before the api starts: the api and the workers reach the image API at that address,
      // and the workers take their service user's token from the identity API's
      BASALT__API__IMAGE_LISTEN_PORT: String(this.imagePort),
      BASALT__GLANCE_STORE__FILESYSTEM_STORE_DATADIR: this.imagesPath,
      BASALT__GLANCE__API_SERVERS: `http://127.0.0.1:${this.imagePort}`,
      BASALT__NOVA__COMPUTE_URL: this.computeUrl ? `${this.computeUrl}/v2.1` : '',
      BASALT__SERVICE_USER__USERNAME: 'admin',
      BASALT__SERVICE_USER__PASSWORD: 'adminpass',
      BASALT__SERVICE_USER__PROJECT_NAME: 'admin',
      ...(this.options.authStrategy === 'builtin'
        ? { BASALT__SERVICE_USER__AUTH_URL: `http://127.0.0.1:${this.identityPort}/v3` }
        : {}),
      BASALT__COMPUTE__VIRT_TYPE: 'qemu',
      BASALT__COMPUTE__INSTANCES_PATH: this.instancesPath,
      BASALT__COMPUTE__INSTANCE_NAME_TEMPLATE: this.instanceNameTemplate(),
      BASALT__COMPUTE__VOLUME_CONNECTOR: 'qemu',
      BASALT__COMPUTE__INITIATOR_IQN: this.initiatorIqn,
      BASALT__COMPUTE__SERIAL_SHELL: 'true',
      BASALT__COMPUTE__MAX_GUEST_MEMORY_MB: '192',
      BASALT__COMPUTE__DEVICE_DETACH_TIMEOUT: '30',
      BASALT__COMPUTE__REPORT_CAPABILITIES_INTERVAL: '0.5',
      ...this.options.extraEnv,
    };
  }

  async start(): Promise<void> {
    mkdirSync(this.volumesPath, { recursive: true });
    this.imagePort = await freePort();
    this.identityPort = await freePort();
    if (this.options.brokerUrl) this.rpc = testRpcOptions({ url: this.options.brokerUrl });
    else {
      this.vhost = await createVhost();
      this.rpc = testRpcOptions({ url: this.vhost.url });
    }
    this.database = await createTestDatabase(this.options.postgresUrl);
    this.tgtd = await TgtdFixture.start();
    if (this.options.compute) this.libvirt = await LibvirtFixture.start();
    // a compute stack's volume worker tells the compute API of volumes that grew under servers:
    // it starts once the api says where it listens
    const first: ServiceName[] = this.options.compute
      ? ['scheduler', 'api']
      : ['volume-worker', 'scheduler', 'api'];
    await Promise.all(first.map((name) => this.startService(name)));
    const listening =
      /"volume_api":"([^"]+)","identity_api":"([^"]+)","compute_api":"([^"]+)","image_api":"([^"]+)"/.exec(
        this.service('api').log,
      );
    if (!listening) throw new Error(`api did not say where it listens:\n${this.service('api').log}`);
    this.volumeUrl = listening[1] as string;
    this.identityUrl = listening[2] as string;
    this.computeUrl = listening[3] as string;
    this.imageUrl = listening[4] as string;
    if (this.options.compute) await this.startService('volume-worker');
    // ready for requests once the scheduler has heard from the volume host
    await this.service('scheduler').waitForLog(/"method":"update_service_capabilities".*"rpc handled"/);
    if (this.options.compute) await this.startCompute();
  }

  /** The compute worker (told where the image API listens) and the test image, registered. */
  private async startCompute(): Promise<void> {
    // QEMU runs as libvirt-qemu: it must reach the instance folders inside the private temp dir
    chmodSync(this.dir, 0o755);
    mkdirSync(this.instancesPath, { recursive: true });
    const image = await testImage();
    const created = await this.basalt('image', 'create', '--file', image, '--name', 'basalt-test');
    this.imageId = /\| id +\| (\S+) +\|/.exec(created)?.[1] ?? '';
    if (!this.imageId) throw new Error(`basalt image create said:\n${created}`);
    await this.startService('compute-worker');
    await this.service('scheduler').waitForLog(
      new RegExp(`"host":"${this.host}".*"compute host joined"`),
      30_000,
    );
  }

  /** One query on the stack's database. */
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const ds = createDataSource({ url: this.database.url, poolSize: 1 });
    await ds.initialize();
    try {
      return await ds.query(sql, params);
    } finally {
      await ds.destroy();
    }
  }

  /** Runs the operators' `basalt` command against this stack. */
  async basalt(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [join(ROOT, 'libs', 'cli', 'dist', 'main.js'), ...args], {
      env: { ...process.env, ...this.env() },
      timeout: 60_000,
    });
    return stdout;
  }

  /** Starts the service (again, after it died or was stopped); ready once it says it started. */
  async startService(name: ServiceName): Promise<ServiceProcess> {
    const process = new ServiceProcess(
      `${name}-${this.started++}`,
      serviceScript(name),
      this.env(),
      this.dir,
    );
    this.processes.set(name, process);
    // a compute worker is started once its recovery is done: a guest with many volumes takes a while
    await process.waitForLog(/started"/, 90_000);
    return process;
  }

  /** `<prefix>-%08x`: domains of parallel runs on the shared libvirtd never collide. */
  instanceNameTemplate(): string {
    return `${this.libvirt?.prefix ?? 'instance'}-%08x`;
  }

  /** Whatever a failed test left on the shared libvirtd: this stack's domains and its volumes' secrets. */
  private async removeGuests(libvirt: LibvirtFixture): Promise<void> {
    for (const { id } of await this.query<{ id: string }>('SELECT id FROM volumes')) {
      libvirt.trackSecret(`basalt-volume-${id}`);
    }
    await libvirt.cleanUp();
  }

  /** One more api process on the same database and broker, configured apart (e.g. another auth_strategy), and its volume API URL. */
  async startExtraApi(env: Record<string, string>): Promise<{ url: string; process: ServiceProcess }> {
    const process = new ServiceProcess(
      `api-extra-${this.extraApis.length}`,
      serviceScript('api'),
      // the identity and image APIs stay with the stack's own api, on their fixed ports
      { ...this.env(), BASALT__API__IDENTITY_LISTEN_PORT: '0', BASALT__API__IMAGE_LISTEN_PORT: '0', ...env },
      this.dir,
    );
    this.extraApis.push(process);
    await process.waitForLog(/started"/);
    const listening = /"volume_api":"([^"]+)"/.exec(process.log);
    if (!listening) throw new Error(`api did not say where it listens:\n${process.log}`);
    return { url: listening[1] as string, process };
  }

  service(name: ServiceName): ServiceProcess {
    const p = this.processes.get(name);
    if (!p) throw new Error(`${name} is not running`);
    return p;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.values(), ...this.extraApis].map((p) => p.stop()));
    if (this.libvirt) await this.removeGuests(this.libvirt);
    await this.tgtd?.stop();
    if (!this.options.brokerUrl) await this.broker.cleanup();
    await this.vhost?.drop();
    await this.database?.drop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
