import { randomBytes } from 'node:crypto';
import { KeyedLock } from '@basalt/concurrency';
import { adminContext, type RequestContext } from '@basalt/context';
import {
  type ConnectionInfo,
  type Connector,
  type ReconcileReport,
  type SchedulerRpcApi,
  VOLUME_CONTRACT,
  type VolumeCapabilities,
} from '@basalt/contracts';
import {
  type AttachmentRepository,
  Batcher,
  type ChapCredentials,
  CONNECTABLE_STATUSES,
  chapCredentials,
  chapProviderAuth,
  EXPORTED_STATUSES,
  type IscsiTargetRepository,
  isTransientDatabaseError,
  type Move,
  noFreeTarget,
  type SecretBox,
  SecretBoxError,
  SNAPSHOT_STATES,
  type SnapshotRecord,
  type SnapshotRepository,
  sealProviderAuth,
  VOLUME_STATES,
  type VolumeClaim,
  type VolumeRecord,
  type VolumeRepository,
  type VolumeStatus,
} from '@basalt/db';
import { ConflictError, errorMessage, InvalidInputError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import { assertAddress, assertInitiator, assertMountpoint, assertUuid } from '@basalt/naming';
import { contractEndpoint, type RpcEndpoint } from '@basalt/rpc';
import type { VolumeDriver, VolumeSource } from './drivers/volume-driver';
import type { ImageTransfer } from './image-transfer';
import type { NovaNotifier } from './nova-notifier';
import type { ExportRef, ExportSpec, IscsiTarget } from './targets/iscsi-target';
import { TgtdUnavailableError } from './targets/tgtd-control';

export interface VolumeManagerOptions {
  readonly host: string;
  readonly availabilityZone: string;
  /** The driver's name, `volume_backend_name` in the capabilities the scheduler filters on. */
  readonly volumeBackendName: string;
  readonly iqnPrefix: string;
  readonly maxTargets: number;
  readonly reservedPercentage: number;
  readonly maxOverSubscriptionRatio: number;
  /**
   * Seconds in creating/deleting/extending, untouched and not being worked on here, after which
   * `resumeStalled` takes a volume up (its message was lost with the process that was to send it).
   */
  readonly resumeStalledAfterSec: number;
}

export interface VolumeManagerDeps {
  readonly volumes: VolumeRepository;
  readonly snapshots: SnapshotRepository;
  readonly targets: IscsiTargetRepository;
  readonly attachments: AttachmentRepository;
  readonly driver: VolumeDriver;
  readonly target: IscsiTarget;
  /** Image downloads into new volumes and uploads of volumes, through the image API. */
  readonly images: Pick<ImageTransfer, 'copyImageToVolume' | 'copyVolumeToImage' | 'discard'>;
  readonly scheduler: SchedulerRpcApi;
  /** Seals the CHAP secrets this worker stores and opens them when it exports. */
  readonly secrets: SecretBox;
  /** Who is told that an attached volume grew (the compute API); none, no one is. */
  readonly nova?: Pick<NovaNotifier, 'volumeExtended'>;
  readonly log: Logger;
}

const {
  failCreate,
  finishCreate,
  failDelete,
  finishDelete,
  finishExtend,
  finishExtendAttached,
  failExtend,
  finishUpload,
  failUpload,
} = VOLUME_STATES.movesOf('volume-worker');

const snapshotMoves = SNAPSHOT_STATES.movesOf('volume-worker');

/** The states of an operation a worker must finish once it has begun: where its finishing moves start. */
const UNFINISHED = VOLUME_STATES.sourcesOf(finishCreate, finishDelete, finishExtend, finishUpload);
const UNFINISHED_SNAPSHOTS = SNAPSHOT_STATES.sourcesOf(
  snapshotMoves.finishCreate,
  snapshotMoves.finishDelete,
);

/** What `attach_volume` records: which instance uses the connection an initiator made, and where. */
export interface AttachRequest {
  readonly instanceUuid: string;
  readonly mountpoint: string;
  /** The connector given to `initialize_connection`: its initiator names the connection. */
  readonly connector: Connector;
  /** The compute host, when it is not the connector's. */
  readonly hostName?: string;
}

/** One operation on one volume: the move its failure makes (from the state it runs in). */
interface Operation {
  readonly volumeId: string;
  /** The request being served: a failure's user message names it. */
  readonly requestId: string;
  readonly what: string;
  readonly failed: Move<VolumeStatus>;
  readonly log: Logger;
}

/** Resumed operations run this many at a time, so their round trips are group-committed too. */
const RESUME_CONCURRENCY = 16;

/**
 * A dependency that is away (the database, tgtd) is not the volume's failure: the operation stays
 * in its transitional state, is retried by the handler and, past its retries, resumed by the sweep
 * once the dependency answers again.
 */
function isOutage(error: unknown): boolean {
  return isTransientDatabaseError(error) || error instanceof TgtdUnavailableError;
}

const chapSecret = (length: number) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
};

/**
 * The volume host's manager (Cinder's volume/manager.py): storage through the driver, exports
 * through the target helper, state through compare-and-swap transitions. Every method may run
 * twice for the same request (a redelivery, a restart) and must leave the same result.
 */
export class VolumeManager {
  /** One operation per volume at a time, whoever asks (RPC, redelivery, recovery at start). */
  private readonly lock = new KeyedLock();
  /** Creates and deletes running at once share their database round trips (group commit). */
  private readonly createClaims: Batcher<{ id: string; providerAuth: string }, VolumeClaim | undefined>;
  private readonly created: Batcher<{ id: string; providerLocation: string }, boolean>;
  private readonly deleteClaims: Batcher<string, VolumeClaim | undefined>;
  private readonly deleted: Batcher<string, boolean>;
  /**
   * Set at start, after a sweep that failed (the database was away) and when the broker came back:
   * the next sweep takes up every unfinished operation not in progress here, however recent.
   */
  private resumeAllNext = true;

  constructor(
    private readonly deps: VolumeManagerDeps,
    private readonly options: VolumeManagerOptions,
  ) {
    this.createClaims = new Batcher((claims) =>
      deps.volumes.claimForCreate(options.host, claims, options.maxTargets),
    );
    this.created = new Batcher((created) => deps.volumes.markCreated(created));
    this.deleteClaims = new Batcher((ids) => deps.volumes.claimForDelete(options.host, ids));
    this.deleted = new Batcher((ids) => deps.volumes.markDeleted(ids));
  }

  /** The volume topic's methods; `reconcile` is the reconciler's, which looks at the whole host. */
  endpoint(reconcile: (dryRun: boolean) => Promise<ReconcileReport>): RpcEndpoint {
    return contractEndpoint(VOLUME_CONTRACT, {
      create_volume: (args, inv) => this.createVolume(inv.context, args.volume_id, inv.log),
      delete_volume: (args, inv) => this.deleteVolume(inv.context, args.volume_id, inv.log),
      extend_volume: (args, inv) => this.extendVolume(inv.context, args.volume_id, args.new_size, inv.log),
      initialize_connection: (args) =>
        this.initializeConnection(args.volume_id, checkedConnector(args.connector)),
      terminate_connection: (args) =>
        this.terminateConnection(args.volume_id, checkedConnector(args.connector)),
      attach_volume: (args, inv) =>
        this.attachVolume(
          args.volume_id,
          {
            instanceUuid: assertUuid(args.instance_uuid),
            mountpoint: assertMountpoint(args.mountpoint),
            connector: checkedConnector(args.connector),
            ...(args.host_name === undefined ? {} : { hostName: args.host_name }),
          },
          inv.log,
        ),
      detach_volume: (args, inv) => this.detachVolume(args.volume_id, inv.log),
      create_snapshot: (args, inv) => this.createSnapshot(args.snapshot_id, inv.log),
      delete_snapshot: (args, inv) => this.deleteSnapshot(args.snapshot_id, inv.log),
      copy_volume_to_image: (args, inv) =>
        this.copyVolumeToImage(inv.context, args.volume_id, args.image_meta, inv.log),
      publish_service_capabilities: async (_args, inv) => {
        await this.reportCapabilities(inv.context);
      },
      reconcile: (args) => reconcile(args.dry_run),
    });
  }

  /** After a restart of this worker: finish what was in flight, re-apply every export. */
  async recover(): Promise<void> {
    // secrets in clear (stored before sealing) or under a retired key are sealed with the current
    // one, and so are those that do not open but the volume's target still keeps
    const resealed = await this.deps.volumes.resealSecrets(
      this.options.host,
      this.deps.secrets,
      async (id, error) => {
        const volume = await this.deps.volumes.find(id);
        // a config that cannot be read is no source: the volume stays as it is, the start goes on
        const kept = volume && (await this.keptChap(volume).catch(() => undefined));
        if (kept) this.deps.log.warn({ volume_id: id }, 'CHAP secret recovered from its target config');
        // its attaches are refused and rolled back; the worker serves every other volume
        else this.deps.log.error({ volume_id: id, err: error.message }, 'CHAP secret cannot be opened');
        return kept;
      },
    );
    if (resealed > 0) this.deps.log.info({ volumes: resealed }, 'CHAP secrets resealed with the current key');
    // a message of these may come back from the broker too: the lock and the state checks make
    // the second run find nothing to do; attaching/detaching belong to the compute flow
    await this.resumeStalled();
    await this.ensureExports();
  }

  /** The next sweep resumes every unfinished operation not in progress (a connection came back). */
  resumeAllSoon(): void {
    this.resumeAllNext = true;
  }

  /**
   * Resumes the creates, deletes and extends of this host that nothing in this process is working
   * on (its KeyedLock says which are): those untouched for `resumeStalledAfterSec`, or all of them
   * at start and after an outage. Run periodically; returns how many it took up.
   */
  async resumeStalled(): Promise<number> {
    const all = this.resumeAllNext;
    this.resumeAllNext = false;
    let candidates: VolumeRecord[];
    let snapshots: SnapshotRecord[];
    try {
      const idleFor = all ? 0 : this.options.resumeStalledAfterSec;
      candidates = await this.deps.volumes.onHost(this.options.host, UNFINISHED, idleFor);
      snapshots = await this.deps.snapshots.onHost(this.options.host, UNFINISHED_SNAPSHOTS, idleFor);
    } catch (error) {
      this.resumeAllNext = true;
      throw error;
    }
    const idle = candidates.filter((v) => !this.lock.busy(v.id));
    let next = 0;
    const runners = Array.from({ length: Math.min(RESUME_CONCURRENCY, idle.length) }, async () => {
      while (next < idle.length) await this.resume(idle[next++] as VolumeRecord);
    });
    const results = await Promise.allSettled(runners);
    // snapshots after volumes: a snapshot's work waits on its volume's lock anyway
    const idleSnapshots = snapshots.filter((x) => !this.lock.busy(x.volumeId));
    results.push(...(await Promise.allSettled(idleSnapshots.map((x) => this.resumeSnapshot(x)))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.resumeAllNext = true;
      throw failed.reason;
    }
    return idle.length + idleSnapshots.length;
  }

  private async resumeSnapshot(s: SnapshotRecord): Promise<void> {
    const { log } = this.deps;
    log.warn({ snapshot_id: s.id, status: s.status, since: s.updatedAt }, 'resuming an unfinished operation');
    if (snapshotMoves.finishCreate.from.includes(s.status)) await this.createSnapshot(s.id, log);
    else await this.deleteSnapshot(s.id, log);
  }

  private async resume(v: VolumeRecord): Promise<void> {
    const { log } = this.deps;
    log.warn({ volume_id: v.id, status: v.status, since: v.updatedAt }, 'resuming an unfinished operation');
    // the request that began it is gone with its message: the resumed work is a request of its own
    const ctx = adminContext();
    if (finishCreate.from.includes(v.status)) await this.createVolume(ctx, v.id, log);
    else if (finishDelete.from.includes(v.status)) await this.deleteVolume(ctx, v.id, log);
    else if (finishUpload.from.includes(v.status)) await this.abandonUpload(v, log);
    else if (v.extendTo !== null) await this.extendVolume(ctx, v.id, v.extendTo, log);
    // an extend begun before its target size was recorded cannot be finished from the row
    else
      await this.lock.run(v.id, () =>
        this.deps.volumes.transition(v.id, failExtend, {
          statusReason: 'extend failed: its new size was not recorded',
          statusRequestId: ctx.requestId,
        }),
      );
  }

  /**
   * Re-creates the export of every available or in-use volume tgtd does not serve: run at start
   * and periodically, so a tgtd that restarted (and forgot every target) heals without anyone
   * restarting this worker. Returns how many were restored.
   */
  async ensureExports(): Promise<number> {
    const { volumes, target, log } = this.deps;
    const live = await target.liveExports();
    let restored = 0;
    for (const candidate of await volumes.onHost(this.options.host, EXPORTED_STATUSES)) {
      // most passes find everything served: that costs one listing, no query per volume
      if (live.has(this.iqn(candidate))) continue;
      // under the volume's lock and re-read: a delete may have run since the list was taken
      await this.lock.run(candidate.id, async () => {
        try {
          const v = await volumes.find(candidate.id);
          if (!v || !EXPORTED_STATUSES.includes(v.status) || v.host !== this.options.host) return;
          const [tid, initiators, chap] = await Promise.all([
            this.targetNumber(v),
            this.connected(v.id),
            this.requireChap(v),
          ]);
          const spec = this.exportSpec(v, tid, initiators, chap);
          if (live.get(spec.iqn) === spec.tid) return;
          await target.createExport(spec);
          restored++;
          log.info({ volume_id: v.id, tid: spec.tid }, 'export restored');
        } catch (error) {
          log.error({ volume_id: candidate.id, err: errorMessage(error) }, 'could not restore export');
        }
      });
    }
    return restored;
  }

  async reportCapabilities(ctx: RequestContext = adminContext()): Promise<VolumeCapabilities> {
    const capacity = await this.deps.driver.capacity();
    const capabilities: VolumeCapabilities = {
      volume_backend_name: this.options.volumeBackendName,
      pool_name: this.deps.driver.poolName,
      vendor_name: 'Open Source',
      driver_version: '1.0.0',
      storage_protocol: 'iSCSI',
      total_capacity_gb: capacity.totalGb,
      free_capacity_gb: capacity.freeGb,
      provisioned_capacity_gb: capacity.provisionedGb,
      reserved_percentage: this.options.reservedPercentage,
      availability_zone: this.options.availabilityZone,
      thin_provisioning_support: this.deps.driver.thin,
      max_over_subscription_ratio: this.deps.driver.thin ? this.options.maxOverSubscriptionRatio : 1,
    };
    await this.deps.scheduler.update_service_capabilities(ctx, {
      host: this.options.host,
      service_name: 'volume',
      capabilities,
    });
    return capabilities;
  }

  createVolume(ctx: RequestContext, volumeId: string, log: Logger): Promise<void> {
    const { driver, target } = this.deps;
    return this.lock.run(volumeId, async () => {
      // one round trip, shared with the creates running meanwhile: the volume if it is being
      // created here, its CHAP secret (stored before it is used, so a retry exports the same one,
      // hence offered and kept only if it has none) and its target number
      const claim = await this.createClaims.submit({
        id: volumeId,
        providerAuth: sealProviderAuth(
          this.deps.secrets,
          volumeId,
          chapProviderAuth({ user: chapSecret(20), password: chapSecret(20) }),
        ),
      });
      if (!claim) {
        log.info({ volume_id: volumeId }, 'nothing to create');
        return;
      }
      await this.recordingFailure(
        { volumeId, requestId: ctx.requestId, what: 'create', failed: failCreate, log },
        async () => {
          const { volume, targetNum } = claim;
          if (targetNum === null) throw noFreeTarget(this.options.host, this.options.maxTargets);
          const source = await this.sourceOf(volume);
          if (source) await driver.createVolumeFrom(volume.backendName, volume.size, source);
          else await driver.createVolume(volume.backendName, volume.size);
          if (volume.imageId) {
            await this.deps.images.copyImageToVolume(
              volume.imageId,
              driver.backingPath(volume.backendName),
              volume.size,
              log,
            );
          }
          // a volume being created has no connections yet
          const spec = this.exportSpec(volume, targetNum, [], await this.requireChap(volume));
          await target.createExport(spec);
          const done = await this.created.submit({
            id: volumeId,
            providerLocation: target.providerLocation(spec),
          });
          log.info({ volume_id: volumeId, request_id: ctx.requestId, ok: done }, 'volume created');
        },
      );
    });
  }

  deleteVolume(ctx: RequestContext, volumeId: string, log: Logger): Promise<void> {
    const { driver, target } = this.deps;
    return this.lock.run(volumeId, async () => {
      const claim = await this.deleteClaims.submit(volumeId);
      if (!claim) {
        log.info({ volume_id: volumeId }, 'nothing to delete');
        return;
      }
      await this.recordingFailure(
        { volumeId, requestId: ctx.requestId, what: 'delete', failed: failDelete, log },
        async () => {
          const { volume, targetNum } = claim;
          // a cascade delete: the snapshots go first (an LV's snapshots go with it otherwise)
          for (const snapshot of await this.deps.snapshots.ofVolume(volumeId)) {
            if (!snapshotMoves.finishDelete.from.includes(snapshot.status))
              throw new ConflictError(
                `volume ${volumeId} still has snapshot ${snapshot.id} (${snapshot.status})`,
              );
            await this.removeSnapshot(snapshot, log);
          }
          if (targetNum !== null) {
            const chapUser = this.chapUserToRemove(volume, log);
            await target.removeExport({
              ...this.exportRef(volume, targetNum),
              ...(chapUser ? { chapUser } : {}),
            });
          }
          await driver.deleteVolume(volume.backendName);
          await this.deleted.submit(volumeId);
          log.info({ volume_id: volumeId }, 'volume deleted');
        },
      );
    });
  }

  /**
   * Takes a snapshot `creating` on this host: under its volume's lock (no extend or delete of
   * the origin meanwhile), the driver's point-in-time copy, then `available`.
   */
  async createSnapshot(snapshotId: string, log: Logger): Promise<void> {
    await this.onSnapshot(snapshotId, snapshotMoves.failCreate, 'create snapshot', log, async (snapshot) => {
      const volume = await this.deps.volumes.get(snapshot.volumeId);
      await this.deps.driver.createSnapshot(snapshot.backendName, volume.backendName, snapshot.volumeSize);
      await this.deps.snapshots.transition(snapshotId, snapshotMoves.finishCreate, { progress: '100%' });
      log.info({ snapshot_id: snapshotId, volume_id: volume.id }, 'snapshot created');
    });
  }

  async deleteSnapshot(snapshotId: string, log: Logger): Promise<void> {
    await this.onSnapshot(snapshotId, snapshotMoves.failDelete, 'delete snapshot', log, (snapshot) =>
      this.removeSnapshot(snapshot, log),
    );
  }

  private async removeSnapshot(snapshot: SnapshotRecord, log: Logger): Promise<void> {
    await this.deps.driver.deleteSnapshot(snapshot.backendName);
    await this.deps.snapshots.transition(snapshot.id, snapshotMoves.finishDelete);
    log.info({ snapshot_id: snapshot.id }, 'snapshot deleted');
  }

  /**
   * The frame of snapshot operations: under the origin volume's lock, only on a snapshot of this
   * host in the state `failed` starts from, a failure recorded along `failed` with its reason.
   */
  private async onSnapshot(
    snapshotId: string,
    failed: Move<SnapshotRecord['status']>,
    what: string,
    log: Logger,
    work: (snapshot: SnapshotRecord) => Promise<void>,
  ): Promise<void> {
    const first = await this.deps.snapshots.find(snapshotId);
    if (!first) return;
    await this.lock.run(first.volumeId, async () => {
      const snapshot = await this.deps.snapshots.find(snapshotId);
      if (!snapshot || snapshot.host !== this.options.host || !failed.from.includes(snapshot.status)) {
        log.info({ snapshot_id: snapshotId, status: snapshot?.status }, `nothing to ${what}`);
        return;
      }
      await this.recording({ snapshot_id: snapshotId }, what, log, work.bind(this, snapshot), (reason) =>
        this.deps.snapshots.transition(snapshotId, failed, { statusReason: reason }),
      );
    });
  }

  /** Where a new volume's data comes from: the snapshot or the volume its row names, if any. */
  private async sourceOf(volume: VolumeRecord): Promise<VolumeSource | undefined> {
    if (volume.snapshotId) {
      const snapshot = await this.deps.snapshots.get(volume.snapshotId);
      if (snapshot.host !== this.options.host)
        throw new ConflictError(`snapshot ${snapshot.id} is on ${snapshot.host}, not on this host`);
      return { kind: 'snapshot', name: snapshot.backendName, sizeGb: snapshot.volumeSize };
    }
    if (volume.sourceVolid) {
      const source = await this.deps.volumes.get(volume.sourceVolid);
      if (source.host !== this.options.host)
        throw new ConflictError(`volume ${source.id} is on ${source.host}, not on this host`);
      return { kind: 'volume', name: source.backendName, sizeGb: source.size };
    }
    return undefined;
  }

  extendVolume(ctx: RequestContext, volumeId: string, newSize: number, log: Logger): Promise<void> {
    const { volumes, driver, target } = this.deps;
    return this.operate(
      { volumeId, requestId: ctx.requestId, what: 'extend', failed: failExtend, log },
      async (volume) => {
        if (newSize <= volume.size)
          throw new InvalidInputError(`new size ${newSize} must exceed ${volume.size}`);
        await driver.extendVolume(volume.backendName, newSize);
        // growing the LUN needs no credentials: a secret that does not open does not stop it
        await target.extendExport(this.exportRef(volume, await this.targetNumber(volume)));
        // an attached volume stays attached through its extend (attach_status says so)
        const attached = volume.attachStatus === 'attached';
        await volumes.transition(volumeId, attached ? finishExtendAttached : finishExtend, {
          size: newSize,
          extendTo: null,
          statusReason: null,
        });
        log.info({ volume_id: volumeId, size: newSize }, 'volume extended');
        if (attached) await this.tellServers(ctx, volumeId, log);
      },
    );
  }

  /**
   * Copies an `uploading` volume into the image the API created for it (Cinder's
   * copy_volume_to_image), then the volume is `available` again. A copy that fails deletes the
   * image and leaves the volume available with a user message.
   */
  copyVolumeToImage(
    ctx: RequestContext,
    volumeId: string,
    image: { id: string; disk_format: string },
    log: Logger,
  ): Promise<void> {
    const { volumes, driver } = this.deps;
    return this.operate(
      { volumeId, requestId: ctx.requestId, what: 'copy volume to image', failed: failUpload, log },
      async (volume) => {
        if (volume.uploadImageId !== image.id)
          throw new ConflictError(`volume ${volumeId} is being copied into image ${volume.uploadImageId}`);
        try {
          await this.deps.images.copyVolumeToImage(driver.backingPath(volume.backendName), image, log);
        } catch (error) {
          await this.deps.images.discard(image.id, log);
          throw error;
        }
        await volumes.transition(volumeId, finishUpload, { uploadImageId: null, statusReason: null });
        log.info({ volume_id: volumeId, image_id: image.id }, 'volume copied to image');
      },
    );
  }

  /**
   * An upload whose worker went away (its message is gone with it): as Cinder's restart does, the
   * volume is available again; the image it was copied into is deleted.
   */
  private abandonUpload(v: VolumeRecord, log: Logger): Promise<void> {
    return this.lock.run(v.id, async () => {
      if (v.uploadImageId) await this.deps.images.discard(v.uploadImageId, log);
      await this.deps.volumes.transition(v.id, failUpload, {
        uploadImageId: null,
        statusReason: 'copy volume to image failed: the upload was interrupted',
      });
    });
  }

  /**
   * The servers the volume is attached to are told it grew, so their hosts resize the guests'
   * disks (Cinder's volume-extended event). The volume's extend is done whatever the answer: a
   * compute API that does not take it is logged, as Cinder does.
   */
  private async tellServers(ctx: RequestContext, volumeId: string, log: Logger): Promise<void> {
    const servers = [
      ...new Set(
        (await this.deps.attachments.live(volumeId))
          .map((a) => a.instanceUuid)
          .filter((id): id is string => id !== null),
      ),
    ];
    if (!this.deps.nova) {
      log.warn(
        { volume_id: volumeId, servers },
        'no [nova] compute_url: the servers are not told the volume grew',
      );
      return;
    }
    try {
      await this.deps.nova.volumeExtended(ctx, volumeId, servers);
      log.info({ volume_id: volumeId, servers }, 'servers told the volume grew');
    } catch (error) {
      log.warn(
        { volume_id: volumeId, servers, err: errorMessage(error) },
        'the compute API was not told the volume grew',
      );
    }
  }

  /**
   * The frame of extends (creates and deletes claim their volume in a shared round trip
   * instead): one per volume at a time, only on a volume this host owns in the state the
   * operation expects (where `failed` starts), and a failure recorded along `failed` with its reason.
   */
  private operate(op: Operation, work: (volume: VolumeRecord) => Promise<void>): Promise<void> {
    return this.lock.run(op.volumeId, async () => {
      const volume = await this.deps.volumes.find(op.volumeId);
      if (!this.owns(volume, op.failed.from, op.log, op.what)) return;
      await this.recordingFailure(op, () => work(volume));
    });
  }

  /**
   * Runs `work`; if it throws, the volume moves along `failed` with the reason, unless the error
   * was the database's passing trouble, which is thrown on for the retry.
   */
  private recordingFailure(op: Operation, work: () => Promise<void>): Promise<void> {
    return this.recording({ volume_id: op.volumeId }, op.what, op.log, work, (reason) =>
      this.deps.volumes.transition(op.volumeId, op.failed, {
        statusReason: reason,
        statusRequestId: op.requestId,
      }),
    );
  }

  /** Runs `work`; if it throws, `fail` records the reason, unless the database's passing trouble. */
  private async recording(
    subject: Readonly<Record<string, string>>,
    what: string,
    log: Logger,
    work: () => Promise<void>,
    fail: (reason: string) => Promise<unknown>,
  ): Promise<void> {
    try {
      await work();
    } catch (error) {
      // a dropped connection, a lost race, tgtd restarting: the handler runs again, later the sweep
      if (isOutage(error)) throw error;
      log.error({ ...subject, err: errorMessage(error) }, `${what} failed`);
      await fail(`${what} failed: ${errorMessage(error)}`);
    }
  }

  initializeConnection(volumeId: string, connector: Connector): Promise<ConnectionInfo> {
    return this.lock.run(volumeId, () => this.doInitializeConnection(volumeId, connector));
  }

  private async doInitializeConnection(volumeId: string, connector: Connector): Promise<ConnectionInfo> {
    const { volumes, attachments, target } = this.deps;
    const volume = await volumes.get(volumeId);
    if (!CONNECTABLE_STATUSES.includes(volume.status)) {
      throw new ConflictError(`volume ${volumeId} is ${volume.status}; it cannot be connected`);
    }
    // a secret that does not open (and that the target does not keep) refuses the connection
    // before anything changes, so the caller's rollback has nothing to undo here
    const chap = await this.requireChap(volume);
    const [{ previous, current }, tid] = await Promise.all([
      attachments.connect(volumeId, connector),
      this.targetNumber(volume),
    ]);
    return target.initializeConnection(this.exportSpec(volume, tid, current, chap), previous);
  }

  terminateConnection(volumeId: string, connector: Connector): Promise<void> {
    return this.lock.run(volumeId, () => this.doTerminateConnection(volumeId, connector));
  }

  private async doTerminateConnection(volumeId: string, connector: Connector): Promise<void> {
    const { volumes, attachments, target } = this.deps;
    const volume = await volumes.get(volumeId);
    const previous = await this.connected(volumeId);
    const remaining = await attachments.disconnect(volumeId, connector.initiator);
    // the ACL stays as it is: nothing to do at the target (whose config needs the secret)
    if (sameAddresses(previous, remaining)) return;
    const [tid, chap] = await Promise.all([this.targetNumber(volume), this.requireChap(volume)]);
    await target.terminateConnection(this.exportSpec(volume, tid, remaining, chap), previous);
  }

  /**
   * The compute host plugged the volume in: the connection its initiator made becomes the
   * instance's attachment and the volume, reserved (`attaching`) by the caller, is `in-use`.
   * Again for the same instance it succeeds and changes nothing.
   */
  attachVolume(volumeId: string, request: AttachRequest, log: Logger): Promise<void> {
    const { volumes, attachments } = this.deps;
    const { initiator } = request.connector;
    return this.lock.run(volumeId, async () => {
      const attached = await attachments.markAttached(volumeId, {
        initiator,
        instanceUuid: request.instanceUuid,
        mountpoint: request.mountpoint,
        host: request.hostName ?? request.connector.host ?? null,
      });
      if (attached) {
        log.info({ volume_id: volumeId, instance_uuid: request.instanceUuid }, 'volume attached');
        return;
      }
      const volume = await volumes.get(volumeId);
      const connection = (await attachments.live(volumeId)).find((a) => a.initiator === initiator);
      if (!connection)
        throw new ConflictError(
          `volume ${volumeId} has no connection from ${initiator}; initialize it first`,
          {
            data: { volume_id: volumeId },
          },
        );
      if (connection.attachStatus === 'attached')
        throw new ConflictError(
          `volume ${volumeId} is already attached through ${initiator} to instance ${connection.instanceUuid}`,
          { data: { volume_id: volumeId } },
        );
      throw new ConflictError(
        `Invalid volume: Volume ${volumeId} status must be attaching, but current status is: ${volume.status}.`,
        { data: { volume_id: volumeId, status: volume.status } },
      );
    });
  }

  /**
   * After `terminate_connection`: a `detaching` volume is `available` again once no connection of
   * it is attached (else back `in-use`); an `attaching` one whose attach failed goes back the same
   * way. Again once `available` it succeeds and changes nothing.
   */
  detachVolume(volumeId: string, log: Logger): Promise<void> {
    const { volumes, attachments } = this.deps;
    return this.lock.run(volumeId, async () => {
      const status = await attachments.markDetached(volumeId);
      if (status) {
        log.info({ volume_id: volumeId, status }, 'volume detached');
        return;
      }
      const volume = await volumes.get(volumeId);
      if (volume.status === 'available') return;
      throw new ConflictError(
        `Invalid volume: Volume ${volumeId} status must be detaching or attaching, but current status is: ${volume.status}.`,
        { data: { volume_id: volumeId, status: volume.status } },
      );
    });
  }

  /** True when this host should act on the volume; a stale or foreign request is logged and dropped. */
  private owns(
    volume: VolumeRecord | undefined,
    statuses: readonly string[],
    log: Logger,
    what: string,
  ): volume is VolumeRecord {
    if (volume && volume.host === this.options.host && statuses.includes(volume.status)) return true;
    log.info({ volume_id: volume?.id, status: volume?.status, host: volume?.host }, `nothing to ${what}`);
    return false;
  }

  /**
   * The volume's CHAP credentials: its stored secret, else (it does not open) those its target
   * keeps for its export, until the reseal at the next start stores them again.
   */
  private async chapOf(volume: VolumeRecord): Promise<ChapCredentials | undefined> {
    try {
      return chapCredentials(this.deps.secrets, volume);
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      const kept = await this.keptChap(volume);
      if (kept) {
        this.deps.log.warn({ volume_id: volume.id }, 'CHAP secret does not open: its target config has it');
        return kept;
      }
      throw new ConflictError(`volume ${volume.id}'s stored CHAP secret cannot be opened: ${error.message}`, {
        data: { volume_id: volume.id },
      });
    }
  }

  /** The second source of a volume's CHAP credentials, on its volume host: what its target keeps. */
  private keptChap(volume: VolumeRecord): Promise<ChapCredentials | undefined> {
    return this.deps.target.storedCredentials({ name: volume.backendName, iqn: this.iqn(volume) });
  }

  /**
   * The CHAP user whose account goes with the volume's export; none when its secret does not
   * open, and the target helper finds the account itself.
   */
  private chapUserToRemove(volume: VolumeRecord, log: Logger): string | undefined {
    try {
      return chapCredentials(this.deps.secrets, volume)?.user;
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      log.warn(
        { volume_id: volume.id, err: error.message },
        'CHAP secret cannot be opened: the export is removed without it',
      );
      return undefined;
    }
  }

  private async requireChap(volume: VolumeRecord): Promise<ChapCredentials> {
    const chap = await this.chapOf(volume);
    if (!chap) throw new ConflictError(`volume ${volume.id} has no CHAP credentials`);
    return chap;
  }

  private iqn(volume: VolumeRecord): string {
    return `${this.options.iqnPrefix}${volume.backendName}`;
  }

  /** The volume's target number: the one it got at create (allocated now if it has none). */
  private targetNumber(volume: VolumeRecord): Promise<number> {
    return this.deps.targets.allocate(this.options.host, volume.id, this.options.maxTargets);
  }

  /** The addresses with a live connection to the volume: its export's ACL. */
  private connected(volumeId: string): Promise<string[]> {
    return this.deps.attachments.liveAddresses(volumeId);
  }

  private exportRef(volume: VolumeRecord, tid: number): ExportRef {
    return {
      volumeId: volume.id,
      name: volume.backendName,
      iqn: this.iqn(volume),
      tid,
      backingPath: this.deps.driver.backingPath(volume.backendName),
    };
  }

  private exportSpec(
    volume: VolumeRecord,
    tid: number,
    initiators: readonly string[],
    chap: ChapCredentials,
  ): ExportSpec {
    return {
      ...this.exportRef(volume, tid),
      chapUser: chap.user,
      chapPassword: chap.password,
      initiators,
    };
  }
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** The connector's address goes into tgt's ACL and its initiator into the database: only well-formed ones pass. */
function checkedConnector(connector: Connector): Connector {
  return { ...connector, ip: assertAddress(connector.ip), initiator: assertInitiator(connector.initiator) };
}
