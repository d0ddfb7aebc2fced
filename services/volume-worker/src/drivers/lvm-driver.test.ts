import { ScriptedRunner } from '@basalt/exec';
import { createLogger } from '@basalt/log';
import { LvmDriver } from './lvm-driver';

const log = createLogger({ name: 'test', level: 'silent' });

describe('LvmDriver commands', () => {
  const driver = (runner: ScriptedRunner, systemDir?: string) =>
    new LvmDriver(runner, { volumeGroup: 'nova-volumes', ...(systemDir ? { systemDir } : {}) }, log);

  test('create checks for the LV, then lvcreate -L <size>G -n <name> --addtag basalt <vg>; LVM_SYSTEM_DIR is passed', async () => {
    const runner = new ScriptedRunner().on(['lvs'], { exitCode: 5, stderr: 'Failed to find logical volume' });
    await driver(runner, '/etc/basalt/lvm').createVolume('volume-00000001', 10);
    expect(runner.argvs).toEqual([
      ['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', 'nova-volumes/volume-00000001'],
      ['lvcreate', '--yes', '-L', '10G', '-n', 'volume-00000001', '--addtag', 'basalt', 'nova-volumes'],
    ]);
    expect(runner.calls[1]?.env).toEqual({
      LVM_SUPPRESS_FD_WARNINGS: '1',
      LVM_SYSTEM_DIR: '/etc/basalt/lvm',
    });
  });

  test('create of an existing LV and delete of a missing one run nothing more', async () => {
    const exists = new ScriptedRunner().on(['lvs'], { stdout: '  10737418240\n' });
    await driver(exists).createVolume('volume-00000001', 10);
    expect(exists.argvs.map((a) => a[0])).toEqual(['lvs']);
    const missing = new ScriptedRunner().on(['lvs'], { exitCode: 5 });
    await driver(missing).deleteVolume('volume-00000001');
    expect(missing.argvs.map((a) => a[0])).toEqual(['lvs']);
  });

  test('extend grows with lvextend, and is a no-op when already that large', async () => {
    const runner = new ScriptedRunner().on(['lvs'], { stdout: `${1024 ** 3}\n` });
    await driver(runner).extendVolume('volume-00000001', 2);
    expect(runner.argvs.at(-1)).toEqual(['lvextend', '-L', '2G', 'nova-volumes/volume-00000001']);
    const big = new ScriptedRunner().on(['lvs'], { stdout: `${4 * 1024 ** 3}\n` });
    await driver(big).extendVolume('volume-00000001', 2);
    expect(big.argvs.map((a) => a[0])).toEqual(['lvs']);
  });

  test('capacity from vgs, in whole GiB', async () => {
    const runner = new ScriptedRunner().on(['vgs'], { stdout: '  19.99 7.50\n' });
    expect(await driver(runner).capacity()).toEqual({ totalGb: 19, freeGb: 7, provisionedGb: 13 });
    const garbage = new ScriptedRunner().on(['vgs'], { stdout: 'oops' });
    await expect(driver(garbage).capacity()).rejects.toThrow(/cannot read the size/);
  });

  test('a missing volume group is a clear error', async () => {
    const runner = new ScriptedRunner().on(['vgs'], {
      exitCode: 5,
      stderr: 'Volume group "nova-volumes" not found',
    });
    await expect(driver(runner).checkForSetup()).rejects.toThrow(
      'volume group nova-volumes does not exist: create it with vgcreate nova-volumes <device>',
    );
  });

  test('an unsafe name never reaches a command', async () => {
    const runner = new ScriptedRunner();
    await expect(driver(runner).createVolume('x; rm -rf /', 1)).rejects.toThrow(/unsafe volume name/);
    await expect(driver(runner).createVolume('volume-1', 0)).rejects.toThrow(/invalid size/);
    expect(runner.calls).toHaveLength(0);
  });
});
