import { adminContext } from '@basalt/context';
import { computeRpcApi, volumeRpcApi } from '@basalt/contracts';
import {
  InstanceRepository,
  MessageRepository,
  ServiceDirectory,
  SnapshotRepository,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { errorMessage } from '@basalt/errors';
import { type PeriodicTask, runService, startPeriodic } from '@basalt/service';
import { ComputeHostManager } from './compute-placement';
import { HostManager } from './host-manager';
import { SchedulerManager } from './manager';

void runService({
  binary: 'basalt-scheduler',
  topic: 'scheduler',
  clusterGauges: true,
  async build({ config, log, db, rpc }) {
    const manager = new SchedulerManager(
      {
        services: new ServiceDirectory(db, config.DEFAULT.service_down_time),
        volumes: new VolumeRepository(db),
        snapshots: new SnapshotRepository(db),
        volumeTypes: new VolumeTypeRepository(db),
        volumeRpc: volumeRpcApi(rpc.client),
        hosts: new HostManager(),
        instances: new InstanceRepository(db),
        computeApi: computeRpcApi(rpc.client),
        computeHosts: new ComputeHostManager(),
      },
      {
        capabilitiesMaxAgeMs: config.scheduler.capabilities_max_age * 1000,
        capabilitiesWaitMs: config.scheduler.capabilities_wait * 1000,
        resumeStalledAfterSec: config.DEFAULT.resume_stalled_after,
        allocationRatios: {
          ram: config.scheduler.ram_allocation_ratio,
          cpu: config.scheduler.cpu_allocation_ratio,
          disk: config.scheduler.disk_allocation_ratio,
        },
      },
    );
    // before the first request: placement from the hosts' last reports, not an empty table
    await manager.restoreReports(log);
    const messages = new MessageRepository(db, config.DEFAULT.message_ttl);
    const periodic: PeriodicTask[] = [];
    return {
      endpoints: [manager.endpoint()],
      async start() {
        // a fresh scheduler knows no host: ask them all to report now rather than at their next interval
        await volumeRpcApi(rpc.client).publish_service_capabilities(adminContext(), {});
        // a stack without compute hosts has no compute fanout exchange to send to
        await computeRpcApi(rpc.client)
          .publish_service_capabilities(adminContext(), {})
          .catch((error) => log.info({ err: errorMessage(error) }, 'no compute host to ask for resources'));
        periodic.push(
          startPeriodic(
            'placing stalled volumes',
            config.DEFAULT.periodic_interval,
            () => manager.resumeStalled(log),
            log,
          ),
          // as Cinder's scheduler does: expired messages are hidden at once, deleted here
          startPeriodic(
            'deleting expired messages',
            config.DEFAULT.message_reap_interval,
            async () => {
              const reaped = await messages.reapExpired();
              if (reaped > 0) log.info({ reaped }, 'expired user messages deleted');
            },
            log,
          ),
        );
      },
      stop: async () => {
        await Promise.all(periodic.map((p) => p.stop()));
      },
    };
  },
});
