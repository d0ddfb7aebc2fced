import { execFile } from 'node:child_process';
import { chownSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';
import { tempDir, userIds } from './processes';

const run = promisify(execFile);

/** The newest installed PostgreSQL's programs (Debian keeps them out of PATH). */
function pgBin(program: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  const newest = versions.at(-1);
  if (!newest) throw new Error('no PostgreSQL under /usr/lib/postgresql: run ./stack.sh deps');
  return join('/usr/lib/postgresql', newest, 'bin', program);
}

/**
 * A PostgreSQL cluster of the test's own (initdb in a temp dir, its own port and socket
 * directory), so a fault test can stop and restart it while the machine's shared server stays
 * up. PostgreSQL refuses to run as root: its programs run as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** The server's URL, without a database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = tempDir('basalt-pg');
    chownSync(dir, ...userIds('postgres'));
    const pg = new PrivatePostgres(await freePort(), dir);
    await pg.asPostgres(pgBin('initdb'), ['-D', pg.dataDir, '-U', 'postgres', '--auth=trust', '-N']);
    await pg.startServer();
    return pg;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  private asPostgres(program: string, args: readonly string[]) {
    return run('runuser', ['-u', 'postgres', '--', program, ...args], { timeout: 60_000 });
  }

  /** Starts the server and waits until it takes connections. */
  async startServer(): Promise<void> {
    await this.asPostgres(pgBin('pg_ctl'), [
      '-D',
      this.dataDir,
      '-l',
      join(this.dir, 'server.log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ]);
  }

  /** A fast shutdown: sessions are ended (their clients see 57P01), nothing is lost. */
  async stopServer(): Promise<void> {
    await this.asPostgres(pgBin('pg_ctl'), ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']);
  }

  async stop(): Promise<void> {
    await this.stopServer().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
