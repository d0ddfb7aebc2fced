import { BasaltError } from '@basalt/errors';
import type { Command, CommandRunner } from '@basalt/exec';
import type { Logger } from '@basalt/log';
import { assertSafeName, assertSize } from '@basalt/naming';
import {
  BASALT_TAG,
  type BackendVolume,
  type Capacity,
  type VolumeDriver,
  type VolumeSource,
} from './volume-driver';

export interface LvmOptions {
  readonly volumeGroup: string;
  /** LVM_SYSTEM_DIR for every LVM command (an lvm.conf with `activation = 0` on hosts without device-mapper). */
  readonly systemDir?: string;
}

/** lvm2 reports "not found" for a missing LV or VG with exit code 5. */
const LVM_NOT_FOUND = 5;

/** A copy of a whole volume may take long: an hour before the runner gives up on dd. */
const COPY_TIMEOUT_MS = 3_600_000;

/**
 * lvm2 reserves LV names starting with "snapshot": such a name gets a leading underscore, as
 * Cinder's LVM driver escapes it.
 */
function lvName(name: string): string {
  const safe = assertSafeName(name);
  return safe.startsWith('snapshot') ? `_${safe}` : safe;
}

/** Logical volumes in one volume group (`nova-volumes` by default), as nova-volume kept them. */
export class LvmDriver implements VolumeDriver {
  readonly thin = false;

  get poolName(): string {
    return this.options.volumeGroup;
  }

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: LvmOptions,
    private readonly log: Logger,
  ) {}

  private command(argv: readonly [string, ...string[]], extra: Partial<Command> = {}): Command {
    return {
      argv,
      env: {
        LVM_SUPPRESS_FD_WARNINGS: '1',
        ...(this.options.systemDir ? { LVM_SYSTEM_DIR: this.options.systemDir } : {}),
      },
      timeoutMs: 60_000,
      ...extra,
    };
  }

  private lv(name: string): string {
    return `${this.options.volumeGroup}/${lvName(name)}`;
  }

  async checkForSetup(): Promise<void> {
    const result = await this.runner.run(
      this.command(['vgs', '--noheadings', '-o', 'vg_name', this.options.volumeGroup], {
        okExitCodes: [LVM_NOT_FOUND],
      }),
      this.log,
    );
    if (result.exitCode !== 0) {
      throw new BasaltError(
        `volume group ${this.options.volumeGroup} does not exist: create it with vgcreate ${this.options.volumeGroup} <device>`,
      );
    }
  }

  backingPath(name: string): string {
    return `/dev/${this.lv(name)}`;
  }

  /** Size in bytes of the LV, or undefined when it does not exist. */
  private async size(name: string): Promise<number | undefined> {
    const result = await this.runner.run(
      this.command(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', this.lv(name)], {
        okExitCodes: [LVM_NOT_FOUND],
      }),
      this.log,
    );
    return result.exitCode === 0 ? Number(result.stdout.trim()) : undefined;
  }

  async createVolume(name: string, sizeGb: number): Promise<void> {
    assertSize(sizeGb);
    if ((await this.size(name)) !== undefined) return;
    await this.runner.run(
      this.command([
        'lvcreate',
        '--yes',
        '-L',
        `${sizeGb}G`,
        '-n',
        lvName(name),
        '--addtag',
        BASALT_TAG,
        this.options.volumeGroup,
      ]),
      this.log,
    );
  }

  async deleteVolume(name: string): Promise<void> {
    if ((await this.size(name)) === undefined) return;
    await this.runner.run(this.command(['lvremove', '-f', this.lv(name)]), this.log);
  }

  async extendVolume(name: string, newSizeGb: number): Promise<void> {
    assertSize(newSizeGb);
    const current = await this.size(name);
    if (current === undefined) throw new BasaltError(`logical volume ${this.lv(name)} does not exist`);
    if (current >= newSizeGb * 1024 ** 3) return;
    await this.runner.run(this.command(['lvextend', '-L', `${newSizeGb}G`, this.lv(name)]), this.log);
  }

  async inventory(): Promise<BackendVolume[]> {
    const result = await this.runner.run(
      this.command([
        'lvs',
        '--noheadings',
        '--separator',
        '|',
        '-o',
        'lv_name,lv_tags',
        this.options.volumeGroup,
      ]),
      this.log,
    );
    return result.stdout
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((line) => {
        const [lv = '', tags = ''] = line.split('|');
        // the name Basalt gave it, before lvm2's reserved prefix was escaped
        const name = lv.startsWith('_snapshot') ? lv.slice(1) : lv;
        return { name, marked: tags.split(',').includes(BASALT_TAG) };
      });
  }

  /** A thick copy-on-write snapshot as large as its origin (Cinder's `lvcreate --snapshot`). */
  async createSnapshot(name: string, volumeName: string, sizeGb: number): Promise<void> {
    assertSize(sizeGb);
    if ((await this.size(name)) !== undefined) return;
    await this.runner.run(
      this.command([
        'lvcreate',
        '--name',
        lvName(name),
        '--snapshot',
        this.lv(volumeName),
        '-L',
        `${sizeGb}G`,
        '--addtag',
        BASALT_TAG,
      ]),
      this.log,
    );
  }

  deleteSnapshot(name: string): Promise<void> {
    return this.deleteVolume(name);
  }

  /**
   * As Cinder's LVM driver: a new LV, the source's data copied in with dd (a clone copies from a
   * temporary snapshot of its source, so the copy is of one instant), at the full new size.
   */
  async createVolumeFrom(name: string, sizeGb: number, source: VolumeSource): Promise<void> {
    assertSize(source.sizeGb);
    await this.createVolume(name, sizeGb);
    if (source.kind === 'snapshot') {
      await this.copy(source.name, name, source.sizeGb);
      return;
    }
    const temporary = `clone-snap-${assertSafeName(name)}`;
    await this.createSnapshot(temporary, source.name, source.sizeGb);
    try {
      await this.copy(temporary, name, source.sizeGb);
    } finally {
      await this.deleteSnapshot(temporary);
    }
  }

  /** Cinder's copy_volume: `sizeGb` of data from one LV to another, direct I/O both ways. */
  private async copy(from: string, to: string, sizeGb: number): Promise<void> {
    await this.runner.run(
      {
        argv: [
          'dd',
          `if=${this.backingPath(from)}`,
          `of=${this.backingPath(to)}`,
          `count=${sizeGb * 1024}`,
          'bs=1M',
          'iflag=direct',
          'oflag=direct',
          'conv=fdatasync',
        ],
        timeoutMs: COPY_TIMEOUT_MS,
      },
      this.log,
    );
  }

  async capacity(): Promise<Capacity> {
    const vg = await this.runner.run(
      this.command([
        'vgs',
        '--noheadings',
        '--units',
        'g',
        '--nosuffix',
        '-o',
        'vg_size,vg_free',
        this.options.volumeGroup,
      ]),
      this.log,
    );
    const [total = Number.NaN, free = Number.NaN] = vg.stdout.trim().split(/\s+/).map(Number);
    if (!Number.isFinite(total) || !Number.isFinite(free)) {
      throw new BasaltError(
        `cannot read the size of volume group ${this.options.volumeGroup}: "${vg.stdout.trim()}"`,
      );
    }
    return { totalGb: Math.floor(total), freeGb: Math.floor(free), provisionedGb: Math.ceil(total - free) };
  }
}
