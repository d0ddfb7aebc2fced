import type { ReconcileFinding, ReconcileReport } from '@basalt/contracts';
import {
  type AttachmentRepository,
  chapCredentials,
  EXPORTED_STATUSES,
  type IscsiTargetRepository,
  type SecretBox,
  SecretBoxError,
  SNAPSHOT_STATUSES,
  type SnapshotRepository,
  VOLUME_STATUSES,
  type VolumeRecord,
  type VolumeRepository,
  type VolumeStatus,
} from '@basalt/db';
import type { Logger } from '@basalt/log';
import { templatePattern } from '@basalt/naming';
import { ReconcileFindings } from '@basalt/service';
import type { VolumeDriver } from './drivers/volume-driver';
import type { TgtTarget } from './targets/tgt-target';

export interface ReconcilerOptions {
  readonly host: string;
  readonly iqnPrefix: string;
  /** `[volume] volume_name_template`: the names this host's volumes are given. */
  readonly nameTemplate: string;
}

export interface ReconcilerDeps {
  readonly volumes: VolumeRepository;
  readonly snapshots: SnapshotRepository;
  readonly targets: IscsiTargetRepository;
  readonly attachments: AttachmentRepository;
  readonly driver: VolumeDriver;
  readonly target: TgtTarget;
  /** Opens the live volumes' CHAP secrets, for the accounts they keep. */
  readonly secrets: SecretBox;
  readonly log: Logger;
}

const LIVE = VOLUME_STATUSES.filter((s): s is Exclude<VolumeStatus, 'deleted'> => s !== 'deleted');
const LIVE_SNAPSHOTS = SNAPSHOT_STATUSES.filter((s) => s !== 'deleted');
/** A snapshot's name on the backend (Cinder's snapshot_name_template) and a clone's temporary one. */
const SNAPSHOT_NAME =
  /^(snapshot-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|clone-snap-[A-Za-z0-9_.+-]+)$/;
const NO_VOLUME = 'no live volume has this name';
/** The throw-away account tgtd's probe makes at start; a crash mid-probe leaves it. */
const PROBE_ACCOUNT = /^basaltprobe[0-9a-f]{12}$/;

/**
 * Compares one volume host's rows with what the host holds — the backend's volumes, tgtd's
 * targets, accounts and ACLs, the target config files — and removes what Basalt made there that
 * no row needs (recognised by its name pattern and marker: the volumes directory or the `basalt`
 * LV tag, the IQN prefix, a config file it wrote), reporting everything else. What is read first
 * is the host, then the database: a volume is in the database before it is on the host, so a
 * create running meanwhile is never taken for an orphan.
 */
export class VolumeReconciler {
  private readonly ours: RegExp;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly options: ReconcilerOptions,
  ) {
    this.ours = templatePattern(options.nameTemplate);
  }

  async reconcile(dryRun: boolean): Promise<ReconcileReport> {
    const { driver, target, volumes, targets } = this.deps;
    const stored = await driver.inventory();
    const tgt = await target.inventory();
    // ACL entries are read before the attachments (reconcileAcl), as a connect writes its row first
    const live = await volumes.onHost(this.options.host, LIVE);
    const snapshotNames = new Set(
      (await this.deps.snapshots.onHost(this.options.host, LIVE_SNAPSHOTS)).map((s) => s.backendName),
    );
    const numbers = await targets.ofHost(this.options.host);
    const byName = new Map(live.map((v) => [v.backendName, v]));
    const found = new ReconcileFindings(dryRun, this.deps.log);
    const act = (finding: ReconcileFinding, removal: () => Promise<void>) => found.act(finding, removal);

    for (const v of stored) {
      if (byName.has(v.name) || snapshotNames.has(v.name)) continue;
      if (v.marked && SNAPSHOT_NAME.test(v.name)) {
        await act(
          { kind: 'volume', name: v.name, action: 'remove', reason: 'no live snapshot has this name' },
          () => driver.deleteSnapshot(v.name),
        );
        continue;
      }
      await found.orphan('volume', v.name, v.marked && this.ours.test(v.name), NO_VOLUME, () =>
        driver.deleteVolume(v.name),
      );
    }
    const storedNames = new Set(stored.map((v) => v.name));
    for (const v of live) {
      if (EXPORTED_STATUSES.includes(v.status) && !storedNames.has(v.backendName)) {
        found.tell({
          kind: 'volume',
          name: v.backendName,
          reason: `volume ${v.id} is ${v.status} but its storage is missing`,
        });
      }
    }

    const configUsers = new Map(tgt.configs.flatMap((c) => (c.user ? [[c.file, c.user] as const] : [])));
    const keptUsers = new Set<string>();
    for (const t of tgt.targets) {
      const name = t.iqn.startsWith(this.options.iqnPrefix) ? t.iqn.slice(this.options.iqnPrefix.length) : '';
      const volume = byName.get(name);
      if (volume && numbers.get(volume.id) === t.tid) {
        await this.reconcileAcl(volume, t, act);
        continue;
      }
      const mine = name !== '' && (configUsers.has(name) || this.ours.test(name));
      const reason = volume ? `volume ${volume.id} is exported under another target number` : NO_VOLUME;
      // unless the number went to a new volume since the listing (a delete and a create meanwhile)
      await found.orphan('target', `${t.tid} ${t.iqn}`, mine, reason, async () => {
        if ((await target.liveExports()).get(t.iqn) === t.tid) await target.removeTarget(t.tid);
      });
    }
    for (const v of live) {
      try {
        const user = chapCredentials(this.deps.secrets, v)?.user;
        if (user) keptUsers.add(user);
      } catch (error) {
        if (!(error instanceof SecretBoxError)) throw error;
        // its account is the one its target config names; the volume itself needs an operator
        const user = configUsers.get(v.backendName);
        if (user) keptUsers.add(user);
        found.tell({
          kind: 'volume',
          name: v.backendName,
          reason: 'its stored CHAP secret cannot be opened',
        });
      }
    }
    const orphanConfigUsers = new Set(
      [...configUsers].filter(([file]) => !byName.has(file)).map(([, user]) => user),
    );
    for (const account of tgt.accounts) {
      if (keptUsers.has(account)) continue;
      const mine = orphanConfigUsers.has(account) || PROBE_ACCOUNT.test(account);
      await found.orphan('account', account, mine, 'no live volume uses this CHAP account', () =>
        target.removeAccount(account),
      );
    }
    for (const { file } of tgt.configs) {
      const temporary = file.startsWith('.');
      if (!temporary && byName.has(file)) continue;
      await act(
        {
          kind: 'config',
          name: file,
          action: 'remove',
          reason: temporary ? 'a config write that never finished' : NO_VOLUME,
        },
        () => target.removeConfig(file),
      );
    }
    return found.report(this.options.host);
  }

  /** An exported volume's ACL entries that no live attachment holds are let go. */
  private async reconcileAcl(
    volume: VolumeRecord,
    live: { tid: number; iqn: string; acl: string[] },
    act: (finding: ReconcileFinding, removal: () => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const allowed = await this.deps.attachments.liveAddresses(volume.id);
    for (const address of live.acl.filter((a) => !allowed.includes(a))) {
      await act(
        {
          kind: 'acl',
          name: `${live.tid} ${address}`,
          action: 'remove',
          reason: `no live attachment of volume ${volume.id} connects from ${address}`,
        },
        () => this.deps.target.removeInitiator(live.tid, address),
      );
    }
  }
}
