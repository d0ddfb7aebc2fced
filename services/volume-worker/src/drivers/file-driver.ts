import { access, mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { BasaltError } from '@basalt/errors';
import type { CommandRunner } from '@basalt/exec';
import type { Logger } from '@basalt/log';
import { assertSafeName, assertSize, GiB } from '@basalt/naming';
import type { BackendVolume, Capacity, VolumeDriver, VolumeSource } from './volume-driver';

/** A copy of a whole volume may take long: an hour before the runner gives up on cp. */
const COPY_TIMEOUT_MS = 3_600_000;

/**
 * Sparse raw files in one directory, for hosts without a spare disk. The files are thin: the
 * scheduler weighs their full sizes against the filesystem times max_over_subscription_ratio.
 */
export class FileDriver implements VolumeDriver {
  readonly thin = true;
  readonly poolName = 'file';
  constructor(
    private readonly directory: string,
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

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

  /** A point-in-time copy: cp shares the blocks where the filesystem can (reflink), else copies, sparse. */
  async createSnapshot(name: string, volumeName: string, sizeGb: number): Promise<void> {
    assertSize(sizeGb);
    await this.copyOnce(volumeName, name);
  }

  async deleteSnapshot(name: string): Promise<void> {
    await rm(this.backingPath(name), { force: true });
  }

  /** The source's file copied, then grown to the new size. */
  async createVolumeFrom(name: string, sizeGb: number, source: VolumeSource): Promise<void> {
    assertSize(source.sizeGb);
    await this.copyOnce(source.name, name);
    await this.extendVolume(name, sizeGb);
  }

  /**
   * `from` copied to `to` unless `to` is there: the copy goes to a hidden name first and is
   * renamed when whole, so a copy cut short never passes for done and a rerun starts it again.
   */
  private async copyOnce(from: string, to: string): Promise<void> {
    const target = this.backingPath(to);
    if (await exists(target)) return;
    const partial = join(this.directory, `.${assertSafeName(to)}.partial`);
    try {
      await this.runner.run(
        {
          argv: ['cp', '--reflink=auto', '--sparse=always', this.backingPath(from), partial],
          timeoutMs: COPY_TIMEOUT_MS,
        },
        this.log,
      );
      await rename(partial, target);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
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

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
