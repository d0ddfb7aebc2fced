import { schedulerRpcApi, volumeRpcApi } from '@basalt/contracts';
import {
  BlockDeviceMappingRepository,
  InstanceActionRepository,
  InstanceRepository,
  VolumeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { ExecaRunner } from '@basalt/exec';
import { serviceImageApi } from '@basalt/images';
import { type PeriodicTask, runService, startPeriodic } from '@basalt/service';
import { createComputeDrivers } from './compute-drivers';
import { hypervisorCapacity } from './hypervisor-capacity';
import { imageSourceOf } from './image-source-of';
import { ComputeManager } from './manager';
import { ComputeReconciler } from './reconciler';
import { VirshSessions } from './virt/virsh-session';

void runService({
  binary: 'basalt-compute',
  topic: 'compute',
  async build({ config, log, db, rpc }) {
    const c = config.compute;
    // libvirt operations on a guest's hot path: no virsh process nor libvirtd handshake per command
    const sessions = new VirshSessions(log, c.libvirt_uri);
    const drivers = createComputeDrivers(config, new ExecaRunner(log), sessions);
    await drivers.hypervisor.checkForSetup();
    const imageApi = serviceImageApi(config.glance.api_servers, config.service_user);
    const instances = new InstanceRepository(db);
    const mappings = new BlockDeviceMappingRepository(db);
    const volumes = new VolumeRepository(db);
    const manager = new ComputeManager(
      {
        instances,
        mappings,
        volumes,
        actions: new InstanceActionRepository(db),
        images: { source: (imageId) => imageSourceOf(imageApi, imageId) },
        hypervisor: drivers.hypervisor,
        connector: drivers.connector,
        storage: drivers.storage,
        volumeRpc: volumeRpcApi(rpc.client),
        scheduler: schedulerRpcApi(rpc.client),
        capacity: () => hypervisorCapacity(c.instances_path),
        log,
      },
      {
        host: config.DEFAULT.host,
        availabilityZone: config.DEFAULT.storage_availability_zone,
        virtType: c.virt_type,
        serialShell: c.serial_shell,
        instanceNameTemplate: c.instance_name_template,
        softRebootTimeoutMs: c.wait_soft_reboot_seconds * 1000,
        detachTimeoutMs: c.device_detach_timeout * 1000,
        maxGuestMemoryMb: c.max_guest_memory_mb,
        resumeStalledAfterSec: config.DEFAULT.resume_stalled_after,
      },
    );
    const reconciler = new ComputeReconciler(
      { instances, mappings, volumes, ...drivers, log },
      { host: config.DEFAULT.host, instanceNameTemplate: c.instance_name_template },
    );
    const report = () => manager.reportCapabilities();
    const tasks: PeriodicTask[] = [];
    return {
      endpoints: [manager.endpoint((dryRun) => reconciler.reconcile(dryRun))],
      async start() {
        await manager.recover(log);
        // after the recovery, so what it finished or rolled back is no longer taken for an orphan
        await reconciler
          .reconcile(false)
          .catch((error) => log.warn({ err: errorMessage(error) }, 'reconcile failed'));
        // messages may have been lost with the broker's connections: look at every unfinished row
        rpc.connection.onDown(() => manager.resumeAllSoon());
        await report().catch((error) => log.warn({ err: errorMessage(error) }, 'resource report failed'));
        tasks.push(
          startPeriodic('resource report', c.report_capabilities_interval, report, log),
          startPeriodic(
            'resuming stalled operations',
            config.DEFAULT.periodic_interval,
            () => manager.resumeStalled(log),
            log,
          ),
          startPeriodic('reconcile', c.reconcile_interval, () => reconciler.reconcile(false), log),
        );
      },
      async stop() {
        await Promise.all(tasks.map((task) => task.stop()));
        sessions.close();
      },
    };
  },
});
