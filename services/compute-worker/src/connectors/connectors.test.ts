import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, schema } from '@basalt/config';
import type { ConnectionInfo } from '@basalt/contracts';
import { InvalidInputError } from '@basalt/errors';
import { ScriptedRunner } from '@basalt/exec';
import { createComputeDrivers } from '../compute-drivers';
import { VolumeConnectionError } from '../virt/errors';
import type { SecretStore } from '../virt/hypervisor';
import { initiatorName } from './initiator-name';
import { IscsiadmConnector } from './iscsiadm-connector';
import { QemuConnector } from './qemu-connector';

const PASSWORD = 'Chap-Secret-9876';
const IQN = 'iqn.2010-10.org.openstack:volume-00000007';
const DEVICE = `/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${IQN}-lun-1`;
const host = { ip: '127.0.0.1', initiator: 'iqn.2010-10.org.basalt:compute1', host: 'compute1' };
const info: ConnectionInfo = {
  driver_volume_type: 'iscsi',
  data: {
    target_portal: '127.0.0.1:3260',
    target_iqn: IQN,
    target_lun: 1,
    target_discovered: false,
    volume_id: '0b7e9f4e-5d1c-4d0e-9f7a-1c2b3d4e5f60',
    auth_method: 'CHAP',
    auth_username: 'vol7user',
    auth_password: PASSWORD,
  },
};

/** Secrets by usage; a defined one without a value yet holds `undefined`. */
class MemorySecrets implements SecretStore {
  readonly values = new Map<string, string | undefined>();
  async define(usage: string) {
    if (!this.values.has(usage)) this.values.set(usage, undefined);
    return '00000000-0000-0000-0000-000000000001';
  }
  async ensure(usage: string, value: string) {
    this.values.set(usage, value);
    return '00000000-0000-0000-0000-000000000001';
  }
  async remove(usage: string) {
    this.values.delete(usage);
  }
  async lookup(usage: string) {
    return this.values.has(usage) ? '00000000-0000-0000-0000-000000000001' : undefined;
  }
}

describe('qemu connector', () => {
  test('connect stores the CHAP password in a libvirt secret and gives a network disk naming it and this initiator', async () => {
    const secrets = new MemorySecrets();
    const connector = new QemuConnector(secrets, host);
    const usage = `basalt-volume-${info.data.volume_id}`;
    const connection = await connector.connect(info);
    expect(secrets.values.get(usage)).toBe(PASSWORD);
    expect(connection.source).toEqual({
      type: 'network',
      protocol: 'iscsi',
      name: `${IQN}/1`,
      host: { name: '127.0.0.1', port: 3260 },
      initiatorIqn: host.initiator,
      auth: { username: 'vol7user', secretUsage: usage },
    });
    expect(JSON.stringify(connection)).not.toContain(PASSWORD);
    expect(connection.resources).toEqual([{ kind: 'libvirt-secret', usage }]);
    expect(connector.describe(info)).toEqual(connection);
    expect(connector.properties()).toEqual(host);
    await connector.disconnect(info);
    await connector.disconnect(info);
    expect(secrets.values.size).toBe(0);
  });

  test("prepare defines the volume's secret before its connection is known; connect gives it the value; forget removes it", async () => {
    const secrets = new MemorySecrets();
    const connector = new QemuConnector(secrets, host);
    const usage = `basalt-volume-${info.data.volume_id}`;
    await connector.prepare(info.data.volume_id);
    expect([...secrets.values]).toEqual([[usage, undefined]]);
    await connector.connect(info);
    expect(secrets.values.get(usage)).toBe(PASSWORD);
    await connector.forget(info.data.volume_id);
    await connector.forget(info.data.volume_id);
    expect(secrets.values.size).toBe(0);
  });

  test('connection_info that could inject into XML or argv is refused', () => {
    const connector = new QemuConnector(new MemorySecrets(), host);
    const bad = (data: Partial<ConnectionInfo['data']>): ConnectionInfo => ({
      ...info,
      data: { ...info.data, ...data },
    });
    expect(() => connector.describe(bad({ target_portal: "127.0.0.1:3260'/>" }))).toThrow(InvalidInputError);
    expect(() => connector.describe(bad({ target_iqn: 'iqn.2010-10.org.x:a b' }))).toThrow(InvalidInputError);
    expect(() => connector.describe(bad({ target_lun: -1 }))).toThrow(InvalidInputError);
    expect(() => connector.describe(bad({ auth_username: "u'" }))).toThrow(InvalidInputError);
    expect(() => connector.describe(bad({ target_portal: '127.0.0.1:99999' }))).toThrow(InvalidInputError);
    expect(connector.describe(bad({ target_portal: '[::1]:3260' })).source).toMatchObject({
      host: { name: '::1', port: 3260 },
    });
  });
});

describe('iscsiadm connector', () => {
  const node = ['iscsiadm', '-m', 'node', '-T', IQN, '-p', '127.0.0.1:3260'];
  let nodesDir = '';
  beforeEach(() => {
    nodesDir = mkdtempSync(join(tmpdir(), 'basalt-nodes-'));
  });
  afterEach(() => rmSync(nodesDir, { recursive: true, force: true }));

  /** What `iscsiadm -o new` leaves: the record of the target's portal group 1, default interface. */
  function writeRecord(): string {
    const dir = join(nodesDir, IQN, '127.0.0.1,3260,1');
    mkdirSync(dir, { recursive: true });
    const record = join(dir, 'default');
    writeFileSync(
      record,
      [
        '# BEGIN RECORD 2.1.8',
        `node.name = ${IQN}`,
        'node.tpgt = 1',
        'node.startup = manual',
        'node.session.auth.authmethod = None',
        'node.conn[0].address = 127.0.0.1',
        'node.conn[0].port = 3260',
        '# END RECORD',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    return record;
  }

  function connector(runner: ScriptedRunner, present: () => boolean, inUse = false, timeoutMs = 1000) {
    return new IscsiadmConnector(runner, host, {
      deviceTimeoutMs: timeoutMs,
      deviceInUse: async () => inUse,
      deviceExists: async () => present(),
      rescanIntervalMs: 10,
      nodesDir,
    });
  }

  test('connect: node record with CHAP in its file (0600), login, then the by-path device; the password on no command line', async () => {
    let loggedIn = false;
    let record = '';
    const runner = new ScriptedRunner()
      .on(node, (argv) =>
        argv.length === node.length ? { exitCode: 21, stderr: 'iscsiadm: No records found' } : {},
      )
      .on([...node, '--op', 'new'], () => {
        record = writeRecord();
        return {};
      })
      .on([...node, '--login'], () => {
        // iscsiadm reads the record at the login: the CHAP settings are there by then
        expect(readFileSync(record, 'utf8')).toContain(`node.session.auth.password = ${PASSWORD}`);
        loggedIn = true;
        return {};
      });
    const connection = await connector(runner, () => loggedIn).connect(info);
    expect(connection.source).toEqual({ type: 'block', path: DEVICE });
    expect(runner.argvs.map((a) => a.slice(node.length).join(' '))).toEqual([
      '',
      '--op new',
      '--op update -n node.startup -v automatic',
      '--login',
    ]);
    for (const argv of runner.argvs) expect(argv.join(' ')).not.toContain(PASSWORD);
    expect(readFileSync(record, 'utf8')).toBe(
      [
        '# BEGIN RECORD 2.1.8',
        `node.name = ${IQN}`,
        'node.tpgt = 1',
        'node.startup = manual',
        'node.conn[0].address = 127.0.0.1',
        'node.conn[0].port = 3260',
        'node.session.auth.authmethod = CHAP',
        'node.session.auth.username = vol7user',
        `node.session.auth.password = ${PASSWORD}`,
        '# END RECORD',
        '',
      ].join('\n'),
    );
    expect(statSync(record).mode & 0o777).toBe(0o600);
  });

  test('connect without a record where iscsiadm keeps them fails before the login, the password in no message', async () => {
    const runner = new ScriptedRunner().on(node, (argv) =>
      argv.length === node.length ? { exitCode: 21, stderr: 'iscsiadm: No records found' } : {},
    );
    const error = await connector(runner, () => true)
      .connect(info)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VolumeConnectionError);
    expect((error as Error).message).toContain(`no node record of ${IQN}`);
    expect((error as Error).message).not.toContain(PASSWORD);
    expect(runner.argvs.map((a) => a.slice(node.length).join(' '))).not.toContain('--login');
  });

  test('an existing record and session (exit 15) count as done; the device is waited for with rescans', async () => {
    let checks = 0;
    const runner = new ScriptedRunner().on([...node, '--login'], {
      exitCode: 15,
      stderr: 'iscsiadm: default: 1 session requested, but 1 already present.',
    });
    writeRecord();
    await connector(runner, () => ++checks > 5).connect(info);
    const words = runner.argvs.map((a) => a.slice(node.length).join(' '));
    expect(words).not.toContain('--op new');
    expect(words.filter((w) => w === '--rescan').length).toBeGreaterThan(0);
  });

  test('a device that never appears is a retryable VolumeConnectionError naming it', async () => {
    writeRecord();
    const error = await connector(new ScriptedRunner(), () => false, false, 50)
      .connect(info)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VolumeConnectionError);
    expect((error as VolumeConnectionError).retryable).toBe(true);
    expect((error as Error).message).toContain(DEVICE);
  });

  test('a refused login fails with the password hidden', async () => {
    writeRecord();
    const runner = new ScriptedRunner().on([...node, '--login'], {
      exitCode: 24,
      stderr: `iscsiadm: login failed for ${PASSWORD}`,
    });
    const error = await connector(runner, () => true)
      .connect(info)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VolumeConnectionError);
    expect((error as Error).message).not.toContain(PASSWORD);
    expect((error as Error).message).toContain('***');
  });

  test('disconnect logs out and deletes the record; no session (exit 21) is done; a device another guest uses stays', async () => {
    const runner = new ScriptedRunner().on([...node, '--logout'], {
      exitCode: 21,
      stderr: 'iscsiadm: No matching sessions found',
    });
    await connector(runner, () => true).disconnect(info);
    expect(runner.argvs.map((a) => a.slice(node.length).join(' '))).toEqual(['--logout', '--op delete']);

    const shared = new ScriptedRunner();
    await connector(shared, () => true, true).disconnect(info);
    expect(shared.calls).toHaveLength(0);
  });
});

describe('initiator name', () => {
  test("configured, else open-iscsi's file, else made from the host name", () => {
    expect(initiatorName('iqn.2004-10.com.example:h1', 'h1')).toBe('iqn.2004-10.com.example:h1');
    expect(initiatorName('', 'Compute_1', '/nonexistent')).toBe('iqn.2010-10.org.basalt:compute-1');
  });
});

describe('iscsiadm connector from the factory', () => {
  const iscsiadmHost = loadConfig(schema, { env: { BASALT__COMPUTE__VOLUME_CONNECTOR: 'iscsiadm' } });
  const HEADER = ' Type   Device   Target   Source\n-----------------------------------\n';

  test('the iscsiadm session stays while another domain has the device, and goes when none has', async () => {
    let other = true;
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', 'qemu:///system', 'list'], { stdout: 'instance-00000001\ninstance-00000002\n' })
      .on(['virsh', '-c', 'qemu:///system', 'domblklist'], (argv) => ({
        stdout: `${HEADER}block disk vdc ${argv[4] === 'instance-00000002' && other ? DEVICE : '/dev/sdz'}\n`,
      }));
    const { connector } = createComputeDrivers(iscsiadmHost, runner);
    await connector.disconnect(info);
    expect(runner.argvs.some((a) => a[0] === 'iscsiadm')).toBe(false);
    other = false;
    await connector.disconnect(info);
    expect(runner.argvs.filter((a) => a[0] === 'iscsiadm').map((a) => a.slice(7))).toEqual([
      ['--logout'],
      ['--op', 'delete'],
    ]);
  });
});
