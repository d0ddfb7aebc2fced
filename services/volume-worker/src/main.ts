import { ConfigError } from '@basalt/config';
import { schedulerRpcApi } from '@basalt/contracts';
import {
  AttachmentRepository,
  IscsiTargetRepository,
  SecretBox,
  SnapshotRepository,
  VolumeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { ExecaRunner } from '@basalt/exec';
import { serviceImageApi } from '@basalt/images';
import { serviceTokens } from '@basalt/keystone';
import { type PeriodicTask, runService, startPeriodic } from '@basalt/service';
import { FileDriver } from './drivers/file-driver';
import { LvmDriver } from './drivers/lvm-driver';
import type { VolumeDriver } from './drivers/volume-driver';
import { ImageTransfer } from './image-transfer';
import { VolumeManager } from './manager';
import { NovaNotifier } from './nova-notifier';
import { VolumeReconciler } from './reconciler';
import { TgtTarget } from './targets/tgt-target';
import { TgtdControl } from './targets/tgtd-control';

void runService({
  binary: 'basalt-volume',
  topic: 'volume',
  async build({ config, log, db, rpc }) {
    const v = config.volume;
    if (v.secret_keys.length === 0) {
      throw new ConfigError(
        'volume.secret_keys is empty: the CHAP secrets stored in the database need a key (id:$(openssl rand -base64 32))',
      );
    }
    let secrets: SecretBox;
    try {
      secrets = new SecretBox(v.secret_keys);
    } catch (error) {
      throw new ConfigError(`volume.secret_keys: ${errorMessage(error)}`);
    }
    const runner = new ExecaRunner(log);
    const driver: VolumeDriver =
      v.volume_driver === 'lvm'
        ? new LvmDriver(
            runner,
            { volumeGroup: v.volume_group, ...(v.lvm_system_dir ? { systemDir: v.lvm_system_dir } : {}) },
            log,
          )
        : new FileDriver(v.volumes_path, runner, log);
    await driver.checkForSetup();
    const target = new TgtTarget(
      new TgtdControl(v.tgt_control_port),
      { volumesDir: v.volumes_dir, portal: { ip: v.iscsi_ip_address, port: v.iscsi_port } },
      log,
    );
    await target.checkForSetup();
    const volumes = new VolumeRepository(db);
    const targets = new IscsiTargetRepository(db);
    const attachments = new AttachmentRepository(db);
    const snapshots = new SnapshotRepository(db);
    const manager = new VolumeManager(
      {
        volumes,
        targets,
        attachments,
        snapshots,
        driver,
        target,
        images: new ImageTransfer(
          runner,
          serviceImageApi(config.glance.api_servers, config.service_user),
          v.image_conversion_dir,
        ),
        scheduler: schedulerRpcApi(rpc.client),
        secrets,
        ...(config.nova.compute_url
          ? {
              nova: new NovaNotifier({
                url: config.nova.compute_url,
                token: serviceTokens(config.service_user),
              }),
            }
          : {}),
        log,
      },
      {
        host: config.DEFAULT.host,
        availabilityZone: config.DEFAULT.storage_availability_zone,
        volumeBackendName: v.volume_driver,
        iqnPrefix: v.iscsi_target_prefix,
        maxTargets: v.max_targets,
        reservedPercentage: v.reserved_percentage,
        maxOverSubscriptionRatio: v.max_over_subscription_ratio,
        resumeStalledAfterSec: config.DEFAULT.resume_stalled_after,
      },
    );
    const reconciler = new VolumeReconciler(
      { volumes, snapshots, targets, attachments, driver, target, secrets, log },
      { host: config.DEFAULT.host, iqnPrefix: v.iscsi_target_prefix, nameTemplate: v.volume_name_template },
    );
    const report = () => manager.reportCapabilities();
    const tasks: PeriodicTask[] = [];
    return {
      endpoints: [manager.endpoint((dryRun) => reconciler.reconcile(dryRun))],
      async start() {
        await manager.recover();
        // an audit that fails (tgtd busy, a file unreadable) is told and tried again later
        await reconciler
          .reconcile(false)
          .catch((error) => log.warn({ err: errorMessage(error) }, 'reconcile failed'));
        // messages may have been lost with the broker's connections: look at every unfinished row
        rpc.connection.onDown(() => manager.resumeAllSoon());
        await report().catch((error) => log.warn({ err: errorMessage(error) }, 'capability report failed'));
        tasks.push(
          startPeriodic('capability report', v.report_capabilities_interval, report, log),
          startPeriodic('export check', v.export_check_interval, () => manager.ensureExports(), log),
          startPeriodic('reconcile', v.reconcile_interval, () => reconciler.reconcile(false), log),
          startPeriodic(
            'resuming stalled operations',
            config.DEFAULT.periodic_interval,
            () => manager.resumeStalled(),
            log,
          ),
        );
      },
      async stop() {
        await Promise.all(tasks.map((task) => task.stop()));
      },
    };
  },
});
