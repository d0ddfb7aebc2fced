import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BasaltError } from '@basalt/errors';
import type { CommandResult, CommandRunner } from '@basalt/exec';
import type { Logger } from '@basalt/log';
import { assertAddress, assertIqn, assertSafeName } from '../names';

/** Everything tgt needs to serve one volume. */
export interface ExportSpec {
  readonly name: string;
  readonly iqn: string;
  readonly tid: number;
  readonly backingPath: string;
  readonly chapUser: string;
  readonly chapPassword: string;
  /** Initiator addresses allowed in (the ACL); none means nobody can log in yet. */
  readonly initiators: readonly string[];
}

export interface TgtOptions {
  /** `tgtadm -C`: which tgtd instance this host drives. */
  readonly controlPort: number;
  /** One tgt-admin config file per target lives here, so `tgt-admin -e` can restore every export. */
  readonly volumesDir: string;
}

/** tgtadm answers 22 for "already exists" / "does not exist"; those are the idempotent outcomes. */
const TGT_EINVAL = 22;

/**
 * Exports volumes with tgt. The live target is changed with `tgtadm` (a few ms a call) rather than
 * `tgt-admin` (a Perl program, ~90 ms of CPU a run); each change is also written to a per-target
 * file in tgt-admin's format, so a restarted tgtd can be restored by the worker or by an operator.
 */
export class TgtAdmTarget {
  constructor(
    private readonly runner: CommandRunner,
    private readonly options: TgtOptions,
    private readonly log: Logger,
  ) {}

  private async tgtadm(args: string[], tolerate?: RegExp, secrets: string[] = []): Promise<CommandResult> {
    const result = await this.runner.run(
      {
        argv: ['tgtadm', '-C', String(this.options.controlPort), '--lld', 'iscsi', ...args],
        okExitCodes: tolerate ? [TGT_EINVAL] : [],
        timeoutMs: 30_000,
        secrets,
      },
      this.log,
    );
    if (result.exitCode === TGT_EINVAL && tolerate && !tolerate.test(result.stderr)) {
      throw new BasaltError(`tgtadm ${args.slice(0, 4).join(' ')} failed: ${result.stderr.trim()}`, {
        retryable: true,
      });
    }
    return result;
  }

  /**
   * Creates (or completes) the export; every step tolerates being done already. The CHAP account
   * is bound when the first initiator is let in: with no ACL entry nobody can log in anyway, and
   * each tgtadm call is a process spawn, the costly part of an export.
   */
  async createExport(spec: ExportSpec): Promise<void> {
    this.check(spec);
    await this.writeConfig(spec);
    const tid = String(spec.tid);
    await this.tgtadm(['--op', 'new', '--mode', 'target', '--tid', tid, '-T', spec.iqn], /already exists/);
    await this.tgtadm(
      ['--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '-b', spec.backingPath],
      /already exists/,
    );
    if (spec.initiators.length > 0) await this.admit(spec, spec.initiators);
  }

  /** Whether tgtd currently serves this target number with this IQN. */
  async exportExists(spec: Pick<ExportSpec, 'tid' | 'iqn'>): Promise<boolean> {
    const result = await this.tgtadm(['--op', 'show', '--mode', 'target']);
    return result.stdout.split('\n').some((line) => line.trim() === `Target ${spec.tid}: ${spec.iqn}`);
  }

  /** Makes the ACL exactly `initiators`. */
  async setInitiators(spec: ExportSpec, previous: readonly string[]): Promise<void> {
    this.check(spec);
    await this.writeConfig(spec);
    const added = spec.initiators.filter((a) => !previous.includes(a));
    if (added.length > 0) await this.admit(spec, added);
    for (const address of previous.filter((a) => !spec.initiators.includes(a))) {
      await this.tgtadm(
        ['--op', 'unbind', '--mode', 'target', '--tid', String(spec.tid), '-I', assertAddress(address)],
        /does not exist/,
      );
    }
  }

  /** CHAP account (created and bound, if not yet) and ACL entries for `addresses`. */
  private async admit(spec: ExportSpec, addresses: readonly string[]): Promise<void> {
    const tid = String(spec.tid);
    await this.tgtadm(
      ['--op', 'new', '--mode', 'account', '--user', spec.chapUser, '--password', spec.chapPassword],
      /already exists/,
      [spec.chapPassword],
    );
    await Promise.all([
      this.tgtadm(
        ['--op', 'bind', '--mode', 'account', '--tid', tid, '--user', spec.chapUser],
        /already exists/,
      ),
      ...addresses.map((address) =>
        this.tgtadm(['--op', 'bind', '--mode', 'target', '--tid', tid, '-I', address], /already exists/),
      ),
    ]);
  }

  /** tgt reads a backing store's size when the LUN is added: re-add LUN 1 after the volume grew. */
  async refreshLun(spec: ExportSpec): Promise<void> {
    this.check(spec);
    const tid = String(spec.tid);
    await this.tgtadm(['--op', 'delete', '--mode', 'logicalunit', '--tid', tid, '--lun', '1'], /can't find/);
    await this.tgtadm(
      ['--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '-b', spec.backingPath],
      /already exists/,
    );
  }

  async removeExport(spec: Pick<ExportSpec, 'name' | 'tid' | 'chapUser'>): Promise<void> {
    assertSafeName(spec.name);
    await this.tgtadm(
      ['--op', 'delete', '--force', '--mode', 'target', '--tid', String(spec.tid)],
      /can't find/,
    );
    await this.tgtadm(['--op', 'delete', '--mode', 'account', '--user', spec.chapUser], /can't find/);
    await rm(this.configFile(spec.name), { force: true });
  }

  configFile(name: string): string {
    return join(this.options.volumesDir, assertSafeName(name));
  }

  private check(spec: ExportSpec): void {
    assertSafeName(spec.name);
    assertIqn(spec.iqn);
    if (!/^[A-Za-z0-9]{8,64}$/.test(spec.chapUser) || !/^[A-Za-z0-9]{12,64}$/.test(spec.chapPassword)) {
      throw new BasaltError('CHAP credentials must be 8-64 (user) and 12-64 (password) letters and digits');
    }
    if (!Number.isSafeInteger(spec.tid) || spec.tid <= 0)
      throw new BasaltError(`invalid target number ${spec.tid}`);
    spec.initiators.forEach(assertAddress);
  }

  /** The target in tgt-admin's format, written atomically and readable only by root (it holds the CHAP secret). */
  private async writeConfig(spec: ExportSpec): Promise<void> {
    const lines = [
      `<target ${spec.iqn}>`,
      `    backing-store ${spec.backingPath}`,
      '    driver iscsi',
      `    incominguser ${spec.chapUser} ${spec.chapPassword}`,
      ...spec.initiators.map((a) => `    initiator-address ${a}`),
      '    write-cache on',
      '</target>',
      '',
    ];
    await mkdir(this.options.volumesDir, { recursive: true, mode: 0o700 });
    const file = this.configFile(spec.name);
    // a dot file, so a `include dir/*` glob never picks up a half-written one
    const temporary = join(this.options.volumesDir, `.${spec.name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(temporary, lines.join('\n'), { mode: 0o600 });
    await rename(temporary, file);
  }
}
