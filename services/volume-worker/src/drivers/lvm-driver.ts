import { BasaltError } from '@basalt/errors';
import type { Command, CommandRunner } from '@basalt/exec';
import type { Logger } from '@basalt/log';
import { assertSafeName, assertSize } from '@basalt/naming';
import { BASALT_TAG, type BackendVolume, type Capacity, type VolumeDriver } from './volume-driver';

export interface LvmOptions {
  readonly volumeGroup: string;
  /** LVM_SYSTEM_DIR for every LVM command (an lvm.conf with `activation = 0` on hosts without device-mapper). */
  readonly systemDir?: string;
}

/** lvm2 reports "not found" for a missing LV or VG with exit code 5. */
const LVM_NOT_FOUND = 5;

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
    return `${this.options.volumeGroup}/${assertSafeName(name)}`;
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
        assertSafeName(name),
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
        const [name = '', tags = ''] = line.split('|');
        return { name, marked: tags.split(',').includes(BASALT_TAG) };
      });
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
