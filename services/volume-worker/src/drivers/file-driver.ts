import { mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { BasaltError } from '@basalt/errors';
import { assertSafeName, assertSize, GiB } from '@basalt/naming';
import type { BackendVolume, Capacity, VolumeDriver } from './volume-driver';

/**
 * Sparse raw files in one directory, for hosts without a spare disk. The files are thin: the
 * scheduler weighs their full sizes against the filesystem times max_over_subscription_ratio.
 */
export class FileDriver implements VolumeDriver {
  readonly thin = true;
  readonly poolName = 'file';
  constructor(private readonly directory: string) {}

  async checkForSetup(): Promise<void> {
    try {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      const file = await open(join(this.directory, '.basalt-probe'), 'w');
      await file.close();
      await rm(join(this.directory, '.basalt-probe'));
    } catch (error) {
      throw new BasaltError(`volumes_path ${this.directory} is not a writable directory: ${String(error)}`);
    }
  }

  backingPath(name: string): string {
    return join(this.directory, assertSafeName(name));
  }

  async createVolume(name: string, sizeGb: number): Promise<void> {
    const bytes = assertSize(sizeGb) * GiB;
    const file = await open(this.backingPath(name), 'a', 0o600);
    try {
      const { size } = await file.stat();
      if (size > bytes) throw new BasaltError(`volume file ${name} exists and is larger than ${sizeGb} GiB`);
      if (size < bytes) await file.truncate(bytes);
    } finally {
      await file.close();
    }
  }

  async deleteVolume(name: string): Promise<void> {
    await rm(this.backingPath(name), { force: true });
  }

  async extendVolume(name: string, newSizeGb: number): Promise<void> {
    const bytes = assertSize(newSizeGb) * GiB;
    const file = await open(this.backingPath(name), 'r+');
    try {
      const { size } = await file.stat();
      if (size < bytes) await file.truncate(bytes);
    } finally {
      await file.close();
    }
  }

  /** The directory is Basalt's own (made 0700 at start): every file in it is marked. */
  async inventory(): Promise<BackendVolume[]> {
    const entries = await readdir(this.directory, { withFileTypes: true });
    return entries
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => ({ name: e.name, marked: true }));
  }

  async capacity(): Promise<Capacity> {
    const fs = await statfs(this.directory);
    let provisioned = 0;
    for (const entry of await readdir(this.directory, { withFileTypes: true })) {
      if (entry.isFile() && !entry.name.startsWith('.'))
        provisioned += (await stat(join(this.directory, entry.name))).size;
    }
    return {
      totalGb: Math.floor((fs.blocks * fs.bsize) / GiB),
      freeGb: Math.floor((fs.bavail * fs.bsize) / GiB),
      provisionedGb: Math.ceil(provisioned / GiB),
    };
  }
}
