import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, listening } from './ports';
import { tempDir, userIds } from './processes';
import { uniqueName } from './rpc';

/**
 * A RabbitMQ node of the test's own: its own node name, AMQP and distribution ports, database and
 * logs in a temp dir, no plugins (the machine's management plugin would want the shared port). A
 * fault test stops and restarts it freely while the machine's broker serves everyone else. It runs
 * as the `rabbitmq` user, which holds the Erlang cookie.
 */
export class PrivateRabbitMq {
  private child?: ChildProcess;
  private readonly node = `${uniqueName('basalt_faults')}@localhost`;

  private constructor(
    readonly port: number,
    private readonly distPort: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/`;
  }

  static async start(): Promise<PrivateRabbitMq> {
    const dir = tempDir('basalt-rabbit');
    const port = await freePort();
    let distPort = await freePort();
    while (distPort === port) distPort = await freePort();
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    chownSync(dir, ...userIds('rabbitmq'));
    chownSync(join(dir, 'enabled_plugins'), ...userIds('rabbitmq'));
    const broker = new PrivateRabbitMq(port, distPort, dir);
    await broker.startNode();
    return broker;
  }

  /** Starts the node and waits until it takes AMQP connections. */
  async startNode(timeoutMs = 60_000): Promise<void> {
    const out = openSync(join(this.dir, 'console.log'), 'a');
    this.child = spawn('runuser', ['-u', 'rabbitmq', '--', '/usr/lib/rabbitmq/bin/rabbitmq-server'], {
      cwd: '/var/lib/rabbitmq',
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/var/lib/rabbitmq',
        RABBITMQ_NODENAME: this.node,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(this.port),
        RABBITMQ_DIST_PORT: String(this.distPort),
        RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(this.dir, 'log'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
        RABBITMQ_PID_FILE: join(this.dir, 'node.pid'),
        RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq'),
        RABBITMQ_ADVANCED_CONFIG_FILE: join(this.dir, 'advanced.config'),
      },
      stdio: ['ignore', out, out],
    });
    const deadline = Date.now() + timeoutMs;
    while (!(await listening(this.port))) {
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`private RabbitMQ did not start:\n${this.console()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A clean shutdown of the whole node (every connection drops; durable queues and persistent messages stay). */
  async stopNode(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(this.beamPid(), 'SIGTERM');
    await exited;
  }

  private beamPid(): number {
    return Number(readFileSync(join(this.dir, 'node.pid'), 'utf8').trim());
  }

  private console(): string {
    try {
      return readFileSync(join(this.dir, 'console.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    await this.stopNode().catch(() => this.child?.kill('SIGKILL'));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
