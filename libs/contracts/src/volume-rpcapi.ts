import type { RequestContext } from '@basalt/context';
import type { RpcClient } from '@basalt/rpc';

export const VOLUME_TOPIC = 'volume';
/** Highest version the volume manager implements; callers pin each method to the version that added it. */
export const VOLUME_RPC_VERSION = '1.0';

export interface Connector {
  readonly ip: string;
  readonly initiator: string;
  readonly host?: string;
}

/** What a compute host needs to reach a volume: os-brick's iSCSI connection properties. */
export interface ConnectionInfo {
  readonly driver_volume_type: 'iscsi';
  readonly data: {
    readonly target_portal: string;
    readonly target_iqn: string;
    readonly target_lun: number;
    readonly target_discovered: boolean;
    readonly volume_id: string;
    readonly auth_method: 'CHAP';
    readonly auth_username: string;
    readonly auth_password: string;
  };
}

/** The `volume` topic, served by every volume worker on `volume.<host>`: Cinder's volume/rpcapi.py. */
export class VolumeRpcApi {
  constructor(private readonly client: RpcClient) {}

  private on(host: string) {
    return this.client.prepare({ topic: VOLUME_TOPIC, server: host, version: '1.0' });
  }

  createVolume(ctx: RequestContext, host: string, volumeId: string): Promise<void> {
    return this.on(host).cast(ctx, 'create_volume', { volume_id: volumeId });
  }

  deleteVolume(ctx: RequestContext, host: string, volumeId: string): Promise<void> {
    return this.on(host).cast(ctx, 'delete_volume', { volume_id: volumeId });
  }

  extendVolume(ctx: RequestContext, host: string, volumeId: string, newSize: number): Promise<void> {
    return this.on(host).cast(ctx, 'extend_volume', { volume_id: volumeId, new_size: newSize });
  }

  initializeConnection(
    ctx: RequestContext,
    host: string,
    volumeId: string,
    connector: Connector,
  ): Promise<ConnectionInfo> {
    return this.on(host).call<ConnectionInfo>(ctx, 'initialize_connection', {
      volume_id: volumeId,
      connector,
    });
  }

  terminateConnection(
    ctx: RequestContext,
    host: string,
    volumeId: string,
    connector: Connector,
  ): Promise<void> {
    return this.on(host).call(ctx, 'terminate_connection', { volume_id: volumeId, connector });
  }

  attachVolume(
    ctx: RequestContext,
    host: string,
    volumeId: string,
    instanceUuid: string,
    mountpoint: string,
  ): Promise<void> {
    return this.on(host).call(ctx, 'attach_volume', {
      volume_id: volumeId,
      instance_uuid: instanceUuid,
      mountpoint,
    });
  }

  /** Asks every volume host to report its capabilities now (a scheduler that just started knows none). */
  publishServiceCapabilities(ctx: RequestContext): Promise<void> {
    return this.client
      .prepare({ topic: VOLUME_TOPIC, fanout: true, version: '1.0' })
      .cast(ctx, 'publish_service_capabilities', {});
  }

  detachVolume(ctx: RequestContext, host: string, volumeId: string): Promise<void> {
    return this.on(host).call(ctx, 'detach_volume', { volume_id: volumeId });
  }
}
