import { SchedulerRpcApi } from '@basalt/contracts';
import { AttachmentRepository, IscsiTargetRepository, VolumeRepository } from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { ExecaRunner } from '@basalt/exec';
import { runService } from '@basalt/service';
import { FileDriver } from './drivers/file-driver';
import { LvmDriver } from './drivers/lvm-driver';
import type { VolumeDriver } from './drivers/volume-driver';
import { VolumeManager } from './manager';
import { TgtAdmTarget } from './targets/tgtadm';
import { TgtdControl } from './targets/tgtd-control';

void runService({
  binary: 'basalt-volume',
  topic: 'volume',
  async build({ config, log, db, rpc }) {
    const v = config.volume;
    const runner = new ExecaRunner(log);
    const driver: VolumeDriver =
      v.volume_driver === 'lvm'
        ? new LvmDriver(
            runner,
            { volumeGroup: v.volume_group, ...(v.lvm_system_dir ? { systemDir: v.lvm_system_dir } : {}) },
            log,
          )
        : new FileDriver(v.volumes_path);
    await driver.checkForSetup();
    const target = new TgtAdmTarget(new TgtdControl(v.tgt_control_port), { volumesDir: v.volumes_dir }, log);
    await target.checkForSetup();
    const manager = new VolumeManager(
      {
        volumes: new VolumeRepository(db),
        targets: new IscsiTargetRepository(db),
        attachments: new AttachmentRepository(db),
        driver,
        target,
        scheduler: new SchedulerRpcApi(rpc.client),
        log,
      },
      {
        host: config.DEFAULT.host,
        availabilityZone: config.DEFAULT.storage_availability_zone,
        backendName: v.volume_driver,
        iqnPrefix: v.iscsi_target_prefix,
        portal: { ip: v.iscsi_ip_address, port: v.iscsi_port },
        maxTargets: v.max_targets,
        reservedPercentage: v.reserved_percentage,
        maxOverSubscriptionRatio: v.max_over_subscription_ratio,
      },
    );
    const timers: NodeJS.Timeout[] = [];
    const report = () =>
      manager
        .reportCapabilities()
        .catch((error) => log.warn({ err: errorMessage(error) }, 'capability report failed'));
    let checking: Promise<unknown> | undefined;
    // one check at a time: a slow pass is not overtaken by the next
    const checkExports = () => {
      checking ??= manager
        .ensureExports()
        .catch((error) => log.warn({ err: errorMessage(error) }, 'export check failed'))
        .finally(() => {
          checking = undefined;
        });
    };
    return {
      endpoints: [manager.endpoint()],
      async start() {
        await manager.recover();
        await report();
        timers.push(setInterval(report, v.report_capabilities_interval * 1000));
        timers.push(setInterval(checkExports, v.export_check_interval * 1000));
      },
      async stop() {
        for (const timer of timers) clearInterval(timer);
        await checking;
      },
    };
  },
});
