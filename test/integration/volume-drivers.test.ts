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
  const driver = new FileDriver(dir);
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
complianceSuite('lvm', async () => {
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
