import { schedulerRpcApi, volumeRpcApi } from '@basalt/contracts';
import { BlockDeviceMappingRepository, InstanceRepository, VolumeRepository } from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { ExecaRunner } from '@basalt/exec';
import { type PeriodicTask, runService, startPeriodic } from '@basalt/service';
import { createComputeDrivers } from './compute-drivers';
import { hypervisorCapacity } from './hypervisor-capacity';
import { ImageApi, serviceToken } from './image-api';
import { ComputeManager } from './manager';

void runService({
  binary: 'basalt-compute',
  topic: 'compute',
  async build({ config, log, db, rpc }) {
    const c = config.compute;
    const drivers = createComputeDrivers(config, new ExecaRunner(log));
    await drivers.hypervisor.checkForSetup();
    const user = config.service_user;
    const manager = new ComputeManager(
      {
        instances: new InstanceRepository(db),
        mappings: new BlockDeviceMappingRepository(db),
        volumes: new VolumeRepository(db),
        images: new ImageApi({
          url: config.glance.api_servers,
          token: serviceToken({
            authUrl: user.auth_url,
            username: user.username,
            password: user.password,
            projectName: user.project_name,
          }),
        }),
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
    const report = () => manager.reportCapabilities();
    const tasks: PeriodicTask[] = [];
    return {
      endpoints: [manager.endpoint()],
      async start() {
        await manager.recover(log);
        await report().catch((error) => log.warn({ err: errorMessage(error) }, 'resource report failed'));
        tasks.push(
          startPeriodic('resource report', c.report_capabilities_interval, report, log),
          startPeriodic(
            'resuming stalled operations',
            config.DEFAULT.periodic_interval,
            () => manager.resumeStalled(log),
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
