import type { RequestContext } from '@basalt/context';
import type { RpcClient } from '@basalt/rpc';

export const COMPUTE_TOPIC = 'compute';
/** Highest version the compute manager implements; callers pin each method to the version that added it. */
export const COMPUTE_RPC_VERSION = '1.0';

export type RebootType = 'SOFT' | 'HARD';

/** What a compute host reports about itself (nova's host state, in small). */
export interface ComputeCapabilities {
  readonly memory_mb: number;
  readonly vcpus: number;
  readonly local_gb: number;
  /** What the host's own instances (as the database lists them) already take. */
  readonly memory_mb_used: number;
  readonly vcpus_used: number;
  readonly local_gb_used: number;
  readonly hypervisor_type: 'QEMU';
  readonly availability_zone: string;
}

/** The `compute` topic, served by every compute worker on `compute.<host>`: nova's compute/rpcapi.py. */
export class ComputeRpcApi {
  constructor(private readonly client: RpcClient) {}

  private on(host: string) {
    return this.client.prepare({ topic: COMPUTE_TOPIC, server: host, version: '1.0' });
  }

  runInstance(ctx: RequestContext, host: string, instanceUuid: string): Promise<void> {
    return this.on(host).cast(ctx, 'run_instance', { instance_uuid: instanceUuid });
  }

  terminateInstance(ctx: RequestContext, host: string, instanceUuid: string): Promise<void> {
    return this.on(host).cast(ctx, 'terminate_instance', { instance_uuid: instanceUuid });
  }

  rebootInstance(ctx: RequestContext, host: string, instanceUuid: string, type: RebootType): Promise<void> {
    return this.on(host).cast(ctx, 'reboot_instance', { instance_uuid: instanceUuid, reboot_type: type });
  }

  attachVolume(
    ctx: RequestContext,
    host: string,
    instanceUuid: string,
    volumeId: string,
    mountpoint: string,
  ): Promise<void> {
    return this.on(host).cast(ctx, 'attach_volume', {
      instance_uuid: instanceUuid,
      volume_id: volumeId,
      mountpoint,
    });
  }

  detachVolume(ctx: RequestContext, host: string, instanceUuid: string, volumeId: string): Promise<void> {
    return this.on(host).cast(ctx, 'detach_volume', { instance_uuid: instanceUuid, volume_id: volumeId });
  }

  /** Asks every compute host to report its resources now (a scheduler that just started knows none). */
  publishServiceCapabilities(ctx: RequestContext): Promise<void> {
    return this.client
      .prepare({ topic: COMPUTE_TOPIC, fanout: true, version: '1.0' })
      .cast(ctx, 'publish_service_capabilities', {});
  }
}
