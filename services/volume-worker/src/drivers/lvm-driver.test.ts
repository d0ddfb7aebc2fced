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

  const LVS = ['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size'];
  /** lvs answers for the LVs in `present`, "not found" for the rest. */
  const lvsOf = (present: readonly string[]) =>
    new ScriptedRunner().on(['lvs'], (argv) =>
      present.includes(String(argv.at(-1))) ? { stdout: `${1024 ** 3}\n` } : { exitCode: 5 },
    );

  test('a snapshot is lvcreate --snapshot of its origin, its name escaped as lvm2 reserves "snapshot"', async () => {
    const runner = lvsOf([]);
    await driver(runner).createSnapshot('snapshot-4d2c', 'volume-00000001', 2);
    expect(runner.argvs).toEqual([
      [...LVS, 'nova-volumes/_snapshot-4d2c'],
      [
        'lvcreate',
        '--name',
        '_snapshot-4d2c',
        '--snapshot',
        'nova-volumes/volume-00000001',
        '-L',
        '2G',
        '--addtag',
        'basalt',
      ],
    ]);
    const again = lvsOf(['nova-volumes/_snapshot-4d2c']);
    await driver(again).createSnapshot('snapshot-4d2c', 'volume-00000001', 2);
    expect(again.argvs.map((a) => a[0])).toEqual(['lvs']);
  });

  test('a snapshot is removed with lvremove, and a missing one is left alone', async () => {
    const runner = lvsOf(['nova-volumes/_snapshot-4d2c']);
    await driver(runner).deleteSnapshot('snapshot-4d2c');
    expect(runner.argvs.at(-1)).toEqual(['lvremove', '-f', 'nova-volumes/_snapshot-4d2c']);
    const missing = lvsOf([]);
    await driver(missing).deleteSnapshot('snapshot-4d2c');
    expect(missing.argvs.map((a) => a[0])).toEqual(['lvs']);
  });

  test("a volume from a snapshot: a new LV of the full size, then dd of the snapshot's size", async () => {
    const runner = lvsOf(['nova-volumes/_snapshot-4d2c']);
    await driver(runner).createVolumeFrom('volume-00000002', 3, {
      kind: 'snapshot',
      name: 'snapshot-4d2c',
      sizeGb: 2,
    });
    expect(runner.argvs.slice(1)).toEqual([
      ['lvcreate', '--yes', '-L', '3G', '-n', 'volume-00000002', '--addtag', 'basalt', 'nova-volumes'],
      [
        'dd',
        'if=/dev/nova-volumes/_snapshot-4d2c',
        'of=/dev/nova-volumes/volume-00000002',
        'count=2048',
        'bs=1M',
        'iflag=direct',
        'oflag=direct',
        'conv=fdatasync',
      ],
    ]);
  });

  test('a clone copies from a temporary snapshot of its source, removed even when the copy fails', async () => {
    const created: string[] = [];
    const runner = new ScriptedRunner()
      .on(['lvs'], (argv) =>
        created.includes(String(argv.at(-1))) ? { stdout: `${1024 ** 3}\n` } : { exitCode: 5 },
      )
      .on(['lvcreate'], (argv) => {
        const flag = argv.includes('--name') ? '--name' : '-n';
        const name = argv[argv.indexOf(flag) + 1];
        created.push(`nova-volumes/${name}`);
        return {};
      })
      .on(['dd'], { exitCode: 1, stderr: 'dd: error reading: Input/output error' });
    await expect(
      driver(runner).createVolumeFrom('volume-00000003', 1, {
        kind: 'volume',
        name: 'volume-00000001',
        sizeGb: 1,
      }),
    ).rejects.toThrow();
    expect(runner.argvs.filter((a) => a[0] !== 'lvs')).toEqual([
      ['lvcreate', '--yes', '-L', '1G', '-n', 'volume-00000003', '--addtag', 'basalt', 'nova-volumes'],
      [
        'lvcreate',
        '--name',
        'clone-snap-volume-00000003',
        '--snapshot',
        'nova-volumes/volume-00000001',
        '-L',
        '1G',
        '--addtag',
        'basalt',
      ],
      expect.arrayContaining(['dd', 'if=/dev/nova-volumes/clone-snap-volume-00000003']),
      ['lvremove', '-f', 'nova-volumes/clone-snap-volume-00000003'],
    ]);
  });

  test("the inventory names a snapshot as Basalt does, without lvm2's escape", async () => {
    const runner = new ScriptedRunner().on(['lvs'], {
      stdout: '  volume-00000001|basalt\n  _snapshot-4d2c|basalt\n  other|\n',
    });
    expect(await driver(runner).inventory()).toEqual([
      { name: 'volume-00000001', marked: true },
      { name: 'snapshot-4d2c', marked: true },
      { name: 'other', marked: false },
    ]);
  });
});
