import { adminContext } from '@basalt/context';
import { volumeRpcApi } from '@basalt/contracts';
import { ServiceDirectory, VolumeRepository, VolumeTypeRepository } from '@basalt/db';
import { type PeriodicTask, runService, startPeriodic } from '@basalt/service';
import { HostManager } from './host-manager';
import { SchedulerManager } from './manager';

void runService({
  binary: 'basalt-scheduler',
  topic: 'scheduler',
  build({ config, log, db, rpc }) {
    const manager = new SchedulerManager(
      {
        services: new ServiceDirectory(db, config.DEFAULT.service_down_time),
        volumes: new VolumeRepository(db),
        volumeTypes: new VolumeTypeRepository(db),
        volumeRpc: volumeRpcApi(rpc.client),
        hosts: new HostManager(),
      },
      {
        capabilitiesMaxAgeMs: config.scheduler.capabilities_max_age * 1000,
        capabilitiesWaitMs: config.scheduler.capabilities_wait * 1000,
        resumeStalledAfterSec: config.DEFAULT.resume_stalled_after,
      },
    );
    let stalled: PeriodicTask | undefined;
    return {
      endpoints: [manager.endpoint()],
      async start() {
        // a fresh scheduler knows no host: ask them all to report now rather than at their next interval
        await volumeRpcApi(rpc.client).publish_service_capabilities(adminContext(), {});
        stalled = startPeriodic(
          'placing stalled volumes',
          config.DEFAULT.periodic_interval,
          () => manager.resumeStalled(log),
          log,
        );
      },
      stop: async () => stalled?.stop(),
    };
  },
});
