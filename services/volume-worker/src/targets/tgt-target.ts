import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConnectionInfo } from '@basalt/contracts';
import type { ChapCredentials } from '@basalt/db';
import { BasaltError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { assertAddress, assertIqn, assertSafeName } from '@basalt/naming';
import type { ExportRef, ExportSpec, IscsiTarget } from './iscsi-target';
import {
  type TgtdControl,
  type TgtdRequest,
  TgtErrno,
  TgtMode,
  TgtOp,
  tgtdErrorMessage,
} from './tgtd-control';

/** The CHAP user names Basalt makes (and the only ones it removes on a config's or tgtd's word). */
const CHAP_USER = /^[A-Za-z0-9]{8,64}$/;
const CHAP_PASSWORD = /^[A-Za-z0-9]{12,64}$/;

/** The incoming CHAP account a target config in tgt-admin's format names, if it names one. */
function configAccount(text: string): ChapCredentials | undefined {
  const found = /^\s*incominguser (\S+) (\S+)\s*$/m.exec(text);
  return found ? { user: found[1] as string, password: found[2] as string } : undefined;
}

export interface TgtInventory {
  readonly targets: { readonly tid: number; readonly iqn: string; readonly acl: string[] }[];
  readonly accounts: string[];
  /** Files of the config directory; `user` is the CHAP account a target config names. */
  readonly configs: { readonly file: string; readonly user?: string }[];
}

/** A target as tgtd shows it. */
export interface LiveTarget {
  readonly tid: number;
  readonly iqn: string;
  readonly acl: string[];
  /** The incoming CHAP accounts bound to it. */
  readonly accounts: string[];
}

export interface TgtOptions {
  /** One tgt-admin config file per target lives here, so `tgt-admin -e` can restore every export. */
  readonly volumesDir: string;
  /** Where tgtd listens for initiators: the portal of every export. */
  readonly portal: { readonly ip: string; readonly port: number };
}

/**
 * Exports volumes with tgt (Cinder's tgtadm target helper). The live target is changed through
 * tgtd's management socket, in the requests `tgtadm` would send, rather than by running `tgtadm`
 * (a process per change) or `tgt-admin` (a Perl program started for each change); each change is
 * also written to a per-target file in tgt-admin's format, so a restarted tgtd can be restored by
 * the worker or by an operator with `tgt-admin -e`.
 */
export class TgtTarget implements IscsiTarget {
  constructor(
    private readonly tgtd: TgtdControl,
    private readonly options: TgtOptions,
    private readonly log: Logger,
  ) {}

  /** Fails clearly when tgtd is not there to export volumes; makes the config directory. */
  async checkForSetup(): Promise<void> {
    await this.tgtd.probe();
    await mkdir(this.options.volumesDir, { recursive: true, mode: 0o700 });
  }

  /** Sends one request; `done` lists the answers that mean the change is already in place. */
  private async send(what: string, request: TgtdRequest, done: readonly number[] = []): Promise<string> {
    const started = performance.now();
    const { code, text } = await this.tgtd.request(request);
    // the parameters stay out of the log: an account request carries the CHAP secret
    this.log.debug({ tgtd: what, tid: request.tid, code, ms: +(performance.now() - started).toFixed(2) });
    if (code !== TgtErrno.success && !done.includes(code)) {
      throw new BasaltError(`tgtd could not ${what}: ${tgtdErrorMessage(code)}`, {
        retryable: code !== TgtErrno.invalidRequest,
      });
    }
    return text;
  }

  /**
   * Creates (or completes) the export; every step tolerates being done already. The CHAP account
   * is bound when the first initiator is let in: with no ACL entry nobody can log in anyway.
   */
  async createExport(spec: ExportSpec): Promise<void> {
    this.check(spec);
    await this.writeConfig(spec);
    await this.send(
      `create target ${spec.tid}`,
      { mode: TgtMode.target, op: TgtOp.new, tid: spec.tid, params: { targetname: spec.iqn } },
      [TgtErrno.targetExists],
    );
    await this.send(
      `add LUN 1 to target ${spec.tid}`,
      { mode: TgtMode.logicalunit, op: TgtOp.new, tid: spec.tid, lun: 1, params: { path: spec.backingPath } },
      [TgtErrno.lunExists],
    );
    if (spec.initiators.length > 0) await this.admit(spec, spec.initiators);
  }

  async liveExports(): Promise<Map<string, number>> {
    return new Map((await this.liveTargets()).map((t) => [t.iqn, t.tid]));
  }

  /** Every target tgtd serves, with its ACL and the CHAP accounts bound to it (tgtadm's `show`). */
  private async liveTargets(): Promise<LiveTarget[]> {
    const targets: LiveTarget[] = [];
    let section: 'acl' | 'accounts' | undefined;
    for (const line of (await this.send('list targets', { mode: TgtMode.target, op: TgtOp.show })).split(
      '\n',
    )) {
      const target = /^Target (\d+): (\S+)$/.exec(line);
      if (target) {
        targets.push({ tid: Number(target[1]), iqn: target[2] as string, acl: [], accounts: [] });
        section = undefined;
      } else if (/^ {4}ACL information:/.test(line)) section = 'acl';
      else if (/^ {4}Account information:/.test(line)) section = 'accounts';
      else if (section && /^ {8}\S/.test(line)) {
        const value = line.trim();
        // an outgoing account authenticates the target to initiators: not one that lets them in
        if (!(section === 'accounts' && value.endsWith(' (outgoing)'))) targets.at(-1)?.[section].push(value);
      } else if (/^ {4}\S/.test(line)) section = undefined;
    }
    return targets;
  }

  /** The target tgtd serves under this number for this IQN, if it does. */
  private async liveTarget(spec: Pick<ExportSpec, 'tid' | 'iqn'>): Promise<LiveTarget | undefined> {
    return (await this.liveTargets()).find((t) => t.tid === spec.tid && t.iqn === spec.iqn);
  }

  /**
   * Everything this tgtd and the config directory hold, for the reconciler: each target with its
   * ACL, each CHAP account, and each config file with the account it names.
   */
  async inventory(): Promise<TgtInventory> {
    const targets = (await this.liveTargets()).map(({ tid, iqn, acl }) => ({ tid, iqn, acl }));
    const accounts = (await this.send('list accounts', { mode: TgtMode.account, op: TgtOp.show }))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && l !== 'Account list:');
    const configs: TgtInventory['configs'] = [];
    for (const file of await readdir(this.options.volumesDir)) {
      const text = await readFile(join(this.options.volumesDir, file), 'utf8').catch(() => '');
      const user = configAccount(text)?.user;
      configs.push({ file, ...(user ? { user } : {}) });
    }
    return { targets, accounts, configs };
  }

  /**
   * The CHAP account the export's config file names: only from a file for this IQN, and only
   * credentials Basalt could have made (so what comes back can be exported again).
   */
  async storedCredentials(spec: Pick<ExportSpec, 'name' | 'iqn'>): Promise<ChapCredentials | undefined> {
    assertIqn(spec.iqn);
    let text: string;
    try {
      text = await readFile(this.configFile(spec.name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (!text.startsWith(`<target ${spec.iqn}>\n`)) return undefined;
    const account = configAccount(text);
    return account && CHAP_USER.test(account.user) && CHAP_PASSWORD.test(account.password)
      ? account
      : undefined;
  }

  /** Removes a target by number, whatever it serves (the reconciler's orphans). */
  async removeTarget(tid: number): Promise<void> {
    await this.send(`delete target ${tid}`, { mode: TgtMode.target, op: TgtOp.delete, tid, force: true }, [
      TgtErrno.noTarget,
    ]);
  }

  async removeInitiator(tid: number, address: string): Promise<void> {
    await this.send(
      `remove ${address} from the ACL of target ${tid}`,
      {
        mode: TgtMode.target,
        op: TgtOp.unbind,
        tid,
        params: { 'initiator-address': assertAddress(address) },
      },
      [TgtErrno.aclNotFound],
    );
  }

  async removeAccount(user: string): Promise<void> {
    await this.send(`delete account ${user}`, { mode: TgtMode.account, op: TgtOp.delete, params: { user } }, [
      TgtErrno.noAccount,
    ]);
  }

  /** Removes a file of the config directory (a target's config, or a temporary one left by a crash). */
  async removeConfig(file: string): Promise<void> {
    // a name of the directory (writeConfig's temporaries start with a dot), never a path
    assertSafeName(file.startsWith('.') ? file.slice(1) : file);
    await rm(join(this.options.volumesDir, file), { force: true });
  }

  /** Whether tgtd currently serves this target number with this IQN. */
  async exportExists(spec: Pick<ExportSpec, 'tid' | 'iqn'>): Promise<boolean> {
    return (await this.liveTarget(spec)) !== undefined;
  }

  providerLocation(spec: Pick<ExportSpec, 'tid' | 'iqn'>): string {
    return `${this.portal()},${spec.tid} ${spec.iqn} 1`;
  }

  async initializeConnection(spec: ExportSpec, previous: readonly string[]): Promise<ConnectionInfo> {
    const live = await this.liveTarget(spec);
    if (live) await this.setInitiators(spec, previous, live);
    else await this.createExport(spec);
    return {
      driver_volume_type: 'iscsi',
      data: {
        target_portal: this.portal(),
        target_iqn: spec.iqn,
        target_lun: 1,
        target_discovered: false,
        volume_id: spec.volumeId,
        auth_method: 'CHAP',
        auth_username: spec.chapUser,
        auth_password: spec.chapPassword,
      },
    };
  }

  terminateConnection(spec: ExportSpec, previous: readonly string[]): Promise<void> {
    return this.setInitiators(spec, previous);
  }

  private portal(): string {
    return `${this.options.portal.ip}:${this.options.portal.port}`;
  }

  /**
   * Makes the ACL exactly `initiators`, from `previous`; with the target as tgtd showed it, only
   * what it lacks is added (an entry it lost comes back, an account bound already is left alone).
   */
  async setInitiators(spec: ExportSpec, previous: readonly string[], live?: LiveTarget): Promise<void> {
    this.check(spec);
    const change = async () => {
      const added = spec.initiators.filter((a) => !(live?.acl ?? previous).includes(a));
      if (added.length > 0) await this.admit(spec, added, live?.accounts.includes(spec.chapUser) ?? false);
      for (const address of previous.filter((a) => !spec.initiators.includes(a))) {
        await this.send(
          `remove ${address} from the ACL of target ${spec.tid}`,
          {
            mode: TgtMode.target,
            op: TgtOp.unbind,
            tid: spec.tid,
            params: { 'initiator-address': assertAddress(address) },
          },
          [TgtErrno.aclNotFound],
        );
      }
    };
    // the file and the live target are independent: both are done (or failed) before this returns
    const results = await Promise.allSettled([this.writeConfig(spec), change()]);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /** CHAP account (created and bound, unless `bound` says it is) and ACL entries for `addresses`. */
  private async admit(spec: ExportSpec, addresses: readonly string[], bound = false): Promise<void> {
    if (!bound) {
      await this.send(
        `create account ${spec.chapUser}`,
        {
          mode: TgtMode.account,
          op: TgtOp.new,
          params: { user: spec.chapUser, password: spec.chapPassword },
        },
        [TgtErrno.accountExists],
      );
      await this.send(
        `bind account ${spec.chapUser} to target ${spec.tid}`,
        { mode: TgtMode.account, op: TgtOp.bind, tid: spec.tid, params: { user: spec.chapUser } },
        [TgtErrno.accountExists],
      );
    }
    for (const address of addresses) {
      await this.send(
        `add ${address} to the ACL of target ${spec.tid}`,
        { mode: TgtMode.target, op: TgtOp.bind, tid: spec.tid, params: { 'initiator-address': address } },
        [TgtErrno.aclExists],
      );
    }
  }

  /** tgt reads a backing store's size when the LUN is added: re-add LUN 1 after the volume grew. */
  async extendExport(spec: ExportRef): Promise<void> {
    this.checkRef(spec);
    await this.send(
      `remove LUN 1 of target ${spec.tid}`,
      { mode: TgtMode.logicalunit, op: TgtOp.delete, tid: spec.tid, lun: 1 },
      [TgtErrno.noLun],
    );
    await this.send(
      `add LUN 1 to target ${spec.tid}`,
      { mode: TgtMode.logicalunit, op: TgtOp.new, tid: spec.tid, lun: 1, params: { path: spec.backingPath } },
      [TgtErrno.lunExists],
    );
  }

  /** Target, CHAP account, config file; without `chapUser`, the account is looked up first (`accountOf`). */
  async removeExport(spec: ExportRef & { readonly chapUser?: string }): Promise<void> {
    this.checkRef(spec);
    const user = spec.chapUser ?? (await this.accountOf(spec));
    await this.send(
      `delete target ${spec.tid}`,
      { mode: TgtMode.target, op: TgtOp.delete, tid: spec.tid, force: true },
      [TgtErrno.noTarget],
    );
    if (user) {
      await this.send(
        `delete account ${user}`,
        { mode: TgtMode.account, op: TgtOp.delete, params: { user } },
        [TgtErrno.noAccount],
      );
    } else {
      this.log.warn(
        { volume_id: spec.volumeId, tid: spec.tid },
        'no CHAP account found for the export: any left is for the reconciler',
      );
    }
    await rm(this.configFile(spec.name), { force: true });
  }

  /**
   * The CHAP account of an export whose caller cannot name it: the only one tgtd binds to the
   * target (this number serving this IQN), else the one its config file names
   * (`storedCredentials`); only a name Basalt could have made.
   */
  private async accountOf(spec: Pick<ExportSpec, 'name' | 'iqn' | 'tid'>): Promise<string | undefined> {
    const bound = (await this.liveTarget(spec))?.accounts;
    const user = bound?.length === 1 ? bound[0] : (await this.storedCredentials(spec))?.user;
    return user && CHAP_USER.test(user) ? user : undefined;
  }

  configFile(name: string): string {
    return join(this.options.volumesDir, assertSafeName(name));
  }

  private check(spec: ExportSpec): void {
    this.checkRef(spec);
    if (!CHAP_USER.test(spec.chapUser) || !CHAP_PASSWORD.test(spec.chapPassword)) {
      throw new BasaltError('CHAP credentials must be 8-64 (user) and 12-64 (password) letters and digits');
    }
    spec.initiators.forEach(assertAddress);
  }

  private checkRef(spec: Pick<ExportSpec, 'name' | 'iqn' | 'tid'>): void {
    assertSafeName(spec.name);
    assertIqn(spec.iqn);
    if (!Number.isSafeInteger(spec.tid) || spec.tid <= 0)
      throw new BasaltError(`invalid target number ${spec.tid}`);
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
    const file = this.configFile(spec.name);
    // a dot file, so a `include dir/*` glob never picks up a half-written one
    const temporary = join(this.options.volumesDir, `.${spec.name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(temporary, lines.join('\n'), { mode: 0o600 });
    await rename(temporary, file);
  }
}
