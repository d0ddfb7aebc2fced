import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ExecaRunner } from '@basalt/exec';
import { FileDriver } from '../../services/volume-worker/src/drivers/file-driver';
import { LvmDriver } from '../../services/volume-worker/src/drivers/lvm-driver';
import type { VolumeDriver } from '../../services/volume-worker/src/drivers/volume-driver';
import { tempDir } from '../support/processes';
import { quietLogger, uniqueName } from '../support/rpc';

const run = promisify(execFile);
const GiB = 1024 ** 3;

interface DriverFixture {
  readonly driver: VolumeDriver;
  /** Size in bytes of the stored volume, as the backend itself reports it (undefined: absent). */
  storedSize(name: string): Promise<number | undefined>;
  /** Makes a volume on the backend as someone else would (no Basalt marker), where a backend can tell. */
  foreign?(name: string): Promise<void>;
  teardown(): Promise<void>;
}

/** What every volume driver must do, checked with its real commands. */
function complianceSuite(name: string, setup: () => Promise<DriverFixture>) {
  describe(`${name} driver compliance`, () => {
    let f: DriverFixture;
    beforeAll(async () => {
      f = await setup();
    }, 60_000);
    afterAll(() => f?.teardown(), 60_000);

    test('checkForSetup passes on a working backend', async () => {
      await expect(f.driver.checkForSetup()).resolves.toBeUndefined();
    });

    test('create makes a volume of the size asked, and doing it again changes nothing', async () => {
      const before = await f.driver.capacity();
      await f.driver.createVolume('volume-c0000001', 1);
      expect(await f.storedSize('volume-c0000001')).toBe(GiB);
      await f.driver.createVolume('volume-c0000001', 1);
      expect(await f.storedSize('volume-c0000001')).toBe(GiB);
      const after = await f.driver.capacity();
      expect(after.provisionedGb).toBe(before.provisionedGb + 1);
      // a thick backend gives the space away at once; a thin one only as it is written
      if (!f.driver.thin) expect(after.freeGb).toBe(before.freeGb - 1);
    });

    test('extend grows it; extending to its size again is a no-op', async () => {
      await f.driver.extendVolume('volume-c0000001', 2);
      expect(await f.storedSize('volume-c0000001')).toBe(2 * GiB);
      await f.driver.extendVolume('volume-c0000001', 2);
      expect(await f.storedSize('volume-c0000001')).toBe(2 * GiB);
    });

    test('delete removes it, and deleting a missing volume succeeds', async () => {
      await f.driver.deleteVolume('volume-c0000001');
      expect(await f.storedSize('volume-c0000001')).toBeUndefined();
      await expect(f.driver.deleteVolume('volume-c0000001')).resolves.toBeUndefined();
    });

    test('a request larger than the backend: a thick one refuses it and leaves nothing, a thin one makes it', async () => {
      const size = (await f.driver.capacity()).totalGb + 1000;
      if (f.driver.thin) {
        // sparse: the space is taken only as it is written, the scheduler weighs the oversubscription
        await f.driver.createVolume('volume-c0000002', size);
        expect(await f.storedSize('volume-c0000002')).toBe(size * GiB);
        await f.driver.deleteVolume('volume-c0000002');
      } else {
        await expect(f.driver.createVolume('volume-c0000002', size)).rejects.toThrow(
          /insufficient free space/i,
        );
        expect(await f.storedSize('volume-c0000002')).toBeUndefined();
      }
    });

    test('inventory lists what it made, marked; what others made, unmarked', async () => {
      await f.driver.createVolume('volume-c0000004', 1);
      await f.foreign?.('someone-elses');
      const inventory = await f.driver.inventory();
      expect(inventory).toContainEqual({ name: 'volume-c0000004', marked: true });
      if (f.foreign) expect(inventory).toContainEqual({ name: 'someone-elses', marked: false });
      await f.driver.deleteVolume('volume-c0000004');
      expect(await f.driver.inventory()).not.toContainEqual({ name: 'volume-c0000004', marked: true });
    });

    test('unsafe names and sizes are refused before any command', async () => {
      await expect(f.driver.createVolume('../escape', 1)).rejects.toThrow(/unsafe volume name/);
      await expect(f.driver.createVolume('volume-c0000003', -1)).rejects.toThrow(/invalid size/);
      expect(() => f.driver.backingPath('a/b')).toThrow(/unsafe volume name/);
    });
  });
}

complianceSuite('file', async () => {
  const root = tempDir('basalt-file-driver');
  const dir = join(root, 'volumes');
  const driver = new FileDriver(dir, new ExecaRunner(quietLogger()), quietLogger());
  return {
    driver,
    storedSize: async (name) => {
      const { stdout } = await run('stat', ['-c', '%s', join(dir, name)]).catch(() => ({ stdout: '' }));
      return stdout ? Number(stdout.trim()) : undefined;
    },
    teardown: async () => run('rm', ['-rf', root]).then(() => undefined),
  };
});

// LVM on a loop device. This machine has no device-mapper, so LVM runs metadata-only
// (activation = 0 in an lvm.conf of the test's own, passed as LVM_SYSTEM_DIR).
/** A volume group on a loop device of its own, metadata-only, with the driver over it. */
async function lvmGroup(): Promise<DriverFixture> {
  const dir = tempDir('basalt-lvm');
  const systemDir = join(dir, 'lvm');
  mkdirSync(systemDir);
  writeFileSync(join(systemDir, 'lvm.conf'), 'global {\n  activation = 0\n}\n');
  const env = { ...process.env, LVM_SYSTEM_DIR: systemDir, LVM_SUPPRESS_FD_WARNINGS: '1' };
  const image = join(dir, 'pv.img');
  await run('truncate', ['-s', '4G', image]);
  const loop = (await run('losetup', ['-f', '--show', image])).stdout.trim();
  const vg = uniqueName('basalt-test-vg');
  try {
    await run('pvcreate', ['-q', loop], { env });
    await run('vgcreate', ['-q', vg, loop], { env });
  } catch (error) {
    await run('losetup', ['-d', loop]).catch(() => undefined);
    throw error;
  }
  const driver = new LvmDriver(new ExecaRunner(quietLogger()), { volumeGroup: vg, systemDir }, quietLogger());
  return {
    driver,
    storedSize: async (name) => {
      const out = await run(
        'lvs',
        ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${vg}/${name}`],
        {
          env,
        },
      ).catch(() => undefined);
      return out ? Number(out.stdout.trim()) : undefined;
    },
    foreign: async (name) => {
      await run('lvcreate', ['--yes', '-L', '4M', '-n', name, vg], { env });
    },
    teardown: async () => {
      await run('vgremove', ['-q', '-f', vg], { env }).catch(() => undefined);
      await run('pvremove', ['-q', loop], { env }).catch(() => undefined);
      await run('losetup', ['-d', loop]).catch(() => undefined);
      await run('rm', ['-rf', dir]);
    },
  };
}

complianceSuite('lvm', lvmGroup);

describe('file driver snapshots and clones, with real cp', () => {
  let root: string;
  let dir: string;
  let driver: FileDriver;
  const read = (name: string, offset: number, length: number) =>
    run('dd', [`if=${join(dir, name)}`, 'bs=1', `skip=${offset}`, `count=${length}`, 'status=none']).then(
      (r) => r.stdout,
    );
  const write = (name: string, offset: number, text: string) =>
    run('sh', [
      '-c',
      `printf '%s' "$0" | dd of="$1" bs=1 seek=${offset} conv=notrunc status=none`,
      text,
      join(dir, name),
    ]);
  beforeAll(async () => {
    root = tempDir('basalt-file-snapshots');
    dir = join(root, 'volumes');
    driver = new FileDriver(dir, new ExecaRunner(quietLogger()), quietLogger());
    await driver.checkForSetup();
  });
  afterAll(() => run('rm', ['-rf', root]));

  test('a snapshot keeps the data of its instant; the volume goes on changing', async () => {
    await driver.createVolume('volume-f0000001', 1);
    await write('volume-f0000001', 3 * 1024 * 1024, 'BEFORE');
    await driver.createSnapshot('snapshot-f1', 'volume-f0000001', 1);
    await write('volume-f0000001', 3 * 1024 * 1024, 'AFTER!');
    expect(await read('snapshot-f1', 3 * 1024 * 1024, 6)).toBe('BEFORE');
    expect(await read('volume-f0000001', 3 * 1024 * 1024, 6)).toBe('AFTER!');
    // sparse: the copy takes the blocks written, not its gigabyte
    const { stdout } = await run('du', ['-k', join(dir, 'snapshot-f1')]);
    expect(Number(stdout.split('\t')[0])).toBeLessThan(1024);
    // again: nothing is copied over the snapshot taken
    await driver.createSnapshot('snapshot-f1', 'volume-f0000001', 1);
    expect(await read('snapshot-f1', 3 * 1024 * 1024, 6)).toBe('BEFORE');
  });

  test("a volume from the snapshot has its data at the larger size; a clone has its source's", async () => {
    await driver.createVolumeFrom('volume-f0000002', 2, { kind: 'snapshot', name: 'snapshot-f1', sizeGb: 1 });
    expect(await read('volume-f0000002', 3 * 1024 * 1024, 6)).toBe('BEFORE');
    expect((await run('stat', ['-c', '%s', join(dir, 'volume-f0000002')])).stdout.trim()).toBe(
      String(2 * GiB),
    );
    await driver.createVolumeFrom('volume-f0000003', 1, {
      kind: 'volume',
      name: 'volume-f0000001',
      sizeGb: 1,
    });
    expect(await read('volume-f0000003', 3 * 1024 * 1024, 6)).toBe('AFTER!');
  });

  test('a failed copy leaves no volume behind, and deleting a snapshot twice succeeds', async () => {
    await expect(
      driver.createVolumeFrom('volume-f0000004', 1, { kind: 'snapshot', name: 'snapshot-absent', sizeGb: 1 }),
    ).rejects.toThrow(/cp/);
    expect((await run('ls', ['-A', dir])).stdout).not.toMatch(/volume-f0000004/);
    await driver.deleteSnapshot('snapshot-f1');
    await driver.deleteSnapshot('snapshot-f1');
    expect((await run('ls', ['-A', dir])).stdout).not.toMatch(/snapshot-f1/);
  });
});

// Without device-mapper, lvm2 keeps no snapshot (it refuses one in metadata-only mode) and no LV
// has a device to copy with dd: what runs for real here is the refusal, surfaced as a clear error.
describe('lvm driver snapshots on a metadata-only volume group', () => {
  let f: Awaited<ReturnType<typeof lvmGroup>>;
  beforeAll(async () => {
    f = await lvmGroup();
  }, 60_000);
  afterAll(() => f?.teardown(), 60_000);

  test('lvcreate --snapshot is refused without device-mapper: the driver says so and leaves no LV', async () => {
    await f.driver.createVolume('volume-d0000001', 1);
    await expect(f.driver.createSnapshot('snapshot-d1', 'volume-d0000001', 1)).rejects.toThrow(
      /Can't create snapshot without using device-mapper/,
    );
    expect(await f.storedSize('_snapshot-d1')).toBeUndefined();
    await expect(f.driver.deleteSnapshot('snapshot-d1')).resolves.toBeUndefined();
  });

  test('a volume from a snapshot is created, then its dd copy fails on the missing device', async () => {
    await expect(
      f.driver.createVolumeFrom('volume-d0000002', 2, { kind: 'snapshot', name: 'snapshot-d1', sizeGb: 1 }),
    ).rejects.toThrow(/dd/);
    expect(await f.storedSize('volume-d0000002')).toBe(2 * GiB);
  });
});

describe('lvm driver without its volume group', () => {
  test('checkForSetup names the missing group', async () => {
    const driver = new LvmDriver(
      new ExecaRunner(quietLogger()),
      { volumeGroup: uniqueName('absent-vg') },
      quietLogger(),
    );
    await expect(driver.checkForSetup()).rejects.toThrow(/volume group absent-vg_[0-9a-f]+ does not exist/);
  });
});
