import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScriptedRunner } from '@basalt/exec';
import { createLogger } from '@basalt/log';
import { type ExportSpec, TgtAdmTarget } from './tgtadm';

const log = createLogger({ name: 'test', level: 'silent' });
const spec = (over: Partial<ExportSpec> = {}): ExportSpec => ({
  name: 'volume-0000000a',
  iqn: 'iqn.2010-10.org.openstack:volume-0000000a',
  tid: 7,
  backingPath: '/srv/volumes/volume-0000000a',
  chapUser: 'UserName1234',
  chapPassword: 'Secret1234567890',
  initiators: [],
  ...over,
});

describe('TgtAdmTarget', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const setup = () => {
    const runner = new ScriptedRunner();
    const dir = mkdtempSync(join(tmpdir(), 'basalt-tgt-'));
    dirs.push(dir);
    return { runner, dir, target: new TgtAdmTarget(runner, { controlPort: 3, volumesDir: dir }, log) };
  };

  test('createExport: target and LUN 1 on the chosen tgtd; CHAP and ACL once an initiator is let in', async () => {
    const { runner, dir, target } = setup();
    await target.createExport(spec());
    expect(runner.argvs).toEqual([
      [
        'tgtadm',
        '-C',
        '3',
        '--lld',
        'iscsi',
        '--op',
        'new',
        '--mode',
        'target',
        '--tid',
        '7',
        '-T',
        'iqn.2010-10.org.openstack:volume-0000000a',
      ],
      [
        'tgtadm',
        '-C',
        '3',
        '--lld',
        'iscsi',
        '--op',
        'new',
        '--mode',
        'logicalunit',
        '--tid',
        '7',
        '--lun',
        '1',
        '-b',
        '/srv/volumes/volume-0000000a',
      ],
    ]);
    runner.calls.length = 0;
    await target.setInitiators(spec({ initiators: ['10.0.0.5'] }), []);
    expect(runner.argvs.map((a) => a.slice(5, 9).join(' '))).toEqual([
      '--op new --mode account',
      '--op bind --mode account',
      '--op bind --mode target',
    ]);
    expect(runner.argvs[2]?.slice(-2)).toEqual(['-I', '10.0.0.5']);
    expect(runner.calls[0]?.secrets).toEqual(['Secret1234567890']);
    const file = join(dir, 'volume-0000000a');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(
      [
        '<target iqn.2010-10.org.openstack:volume-0000000a>',
        '    backing-store /srv/volumes/volume-0000000a',
        '    driver iscsi',
        '    incominguser UserName1234 Secret1234567890',
        '    initiator-address 10.0.0.5',
        '    write-cache on',
        '</target>',
        '',
      ].join('\n'),
    );
  });

  test('an export restored with its initiators gets its CHAP account and ACL at once', async () => {
    const { runner, target } = setup();
    await target.createExport(spec({ initiators: ['10.0.0.5'] }));
    expect(runner.argvs.map((a) => a.slice(5, 9).join(' '))).toEqual([
      '--op new --mode target',
      '--op new --mode logicalunit',
      '--op new --mode account',
      '--op bind --mode account',
      '--op bind --mode target',
    ]);
  });

  test('"already exists" answers make createExport idempotent; other failures are raised', async () => {
    const { runner, target } = setup();
    runner.on(['tgtadm'], { exitCode: 22, stderr: 'tgtadm: this target already exists\n' });
    await expect(target.createExport(spec())).resolves.toBeUndefined();
    runner.on(['tgtadm'], { exitCode: 22, stderr: 'tgtadm: invalid request\n' });
    await expect(target.createExport(spec())).rejects.toThrow(/invalid request/);
    runner.on(['tgtadm'], { exitCode: 107, stderr: "tgtadm: can't send the request to the tgt daemon" });
    await expect(target.createExport(spec())).rejects.toThrow(/exited with 107/);
  });

  test('setInitiators binds the new addresses and unbinds the gone ones', async () => {
    const { runner, target } = setup();
    await target.setInitiators(spec({ initiators: ['10.0.0.2', '10.0.0.3'] }), ['10.0.0.1', '10.0.0.2']);
    expect(runner.argvs.map((a) => `${a[6]} ${a[8]} ${a.at(-1)}`)).toEqual([
      'new account Secret1234567890',
      'bind account UserName1234',
      'bind target 10.0.0.3',
      'unbind target 10.0.0.1',
    ]);
  });

  test('removeExport deletes the target (forced), the account and the config file', async () => {
    const { runner, target } = setup();
    await target.createExport(spec());
    runner.calls.length = 0;
    await target.removeExport({ name: 'volume-0000000a', tid: 7, chapUser: 'UserName1234' });
    expect(runner.argvs).toEqual([
      ['tgtadm', '-C', '3', '--lld', 'iscsi', '--op', 'delete', '--force', '--mode', 'target', '--tid', '7'],
      [
        'tgtadm',
        '-C',
        '3',
        '--lld',
        'iscsi',
        '--op',
        'delete',
        '--mode',
        'account',
        '--user',
        'UserName1234',
      ],
    ]);
    expect(() => statSync(target.configFile('volume-0000000a'))).toThrow();
  });

  test.each([
    ['a name with a slash', { name: '../etc/passwd' }],
    ['a name starting with a dash', { name: '-rf' }],
    ['a bad IQN', { iqn: 'iqn.2010-10.org.openstack:vol; reboot' }],
    ['a short CHAP password', { chapPassword: 'short' }],
    ['a bad initiator address', { initiators: ['1.2.3.4; rm'] }],
    ['a zero target number', { tid: 0 }],
  ])('refuses %s before running anything', async (_what, over) => {
    const { runner, target } = setup();
    await expect(target.createExport(spec(over))).rejects.toThrow();
    expect(runner.calls).toHaveLength(0);
  });

  test('exportExists reads tgtadm show', async () => {
    const { runner, target } = setup();
    runner.on(['tgtadm'], {
      stdout: 'Target 7: iqn.2010-10.org.openstack:volume-0000000a\n    System information:\n',
    });
    expect(await target.exportExists(spec())).toBe(true);
    expect(await target.exportExists(spec({ tid: 8 }))).toBe(false);
  });
});
