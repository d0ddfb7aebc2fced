import type { RequestContext } from '@basalt/context';
import type { RpcClient } from '@basalt/rpc';
import type { ComputeCapabilities } from './compute-rpcapi';

export const SCHEDULER_TOPIC = 'scheduler';
export const SCHEDULER_RPC_VERSION = '1.0';

/** What a volume host reports about itself (Cinder's volume stats). */
export interface VolumeCapabilities {
  readonly volume_backend_name: string;
  readonly storage_protocol: 'iSCSI';
  readonly total_capacity_gb: number;
  readonly free_capacity_gb: number;
  readonly provisioned_capacity_gb: number;
  readonly reserved_percentage: number;
  readonly availability_zone: string;
  readonly thin_provisioning_support: boolean;
  readonly max_over_subscription_ratio: number;
}

export interface ScheduleVolumeRequest {
  readonly volume_id: string;
  readonly size: number;
  readonly availability_zone: string;
}

/** What placing an instance needs: its flavor's resources (nova's request spec, in small). */
export interface ScheduleInstanceRequest {
  readonly instance_uuid: string;
  readonly memory_mb: number;
  readonly vcpus: number;
  readonly root_gb: number;
  readonly ephemeral_gb: number;
}

/** The `scheduler` topic: Cinder's scheduler/rpcapi.py. */
export class SchedulerRpcApi {
  constructor(private readonly client: RpcClient) {}

  createVolume(ctx: RequestContext, request: ScheduleVolumeRequest): Promise<void> {
    return this.client
      .prepare({ topic: SCHEDULER_TOPIC, version: '1.0' })
      .cast(ctx, 'create_volume', { ...request });
  }

  runInstance(ctx: RequestContext, request: ScheduleInstanceRequest): Promise<void> {
    return this.client
      .prepare({ topic: SCHEDULER_TOPIC, version: '1.0' })
      .cast(ctx, 'run_instance', { ...request });
  }

  /** Sent by compute workers to every scheduler at once. */
  updateComputeCapabilities(
    ctx: RequestContext,
    host: string,
    capabilities: ComputeCapabilities,
  ): Promise<void> {
    return this.client
      .prepare({ topic: SCHEDULER_TOPIC, fanout: true, version: '1.0' })
      .cast(ctx, 'update_service_capabilities', {
        host,
        service_name: 'compute',
        capabilities: { ...capabilities },
      });
  }

  /** Sent by volume workers to every scheduler at once. */
  updateServiceCapabilities(
    ctx: RequestContext,
    host: string,
    capabilities: VolumeCapabilities,
  ): Promise<void> {
    return this.client
      .prepare({ topic: SCHEDULER_TOPIC, fanout: true, version: '1.0' })
      .cast(ctx, 'update_service_capabilities', {
        host,
        service_name: 'volume',
        capabilities: { ...capabilities },
      });
  }
}
