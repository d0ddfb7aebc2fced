import type { ConnectionInfo, Connector } from '@basalt/contracts';
import type { SecretStore } from '../virt/hypervisor';
import { iscsiTarget } from './iscsi-target';
import type { VolumeConnection, VolumeConnector } from './volume-connector';

/**
 * QEMU's own iSCSI initiator (libiscsi) through a libvirt network disk: nothing is logged in on
 * the host. The CHAP password sits in a libvirt secret named after the volume, and the disk
 * carries this host's initiator IQN so the target's ACL can name it.
 */
export class QemuConnector implements VolumeConnector {
  readonly kind = 'qemu';

  constructor(
    private readonly secrets: SecretStore,
    private readonly connector: Connector,
  ) {}

  properties(): Connector {
    return this.connector;
  }

  describe(info: ConnectionInfo): VolumeConnection {
    const target = iscsiTarget(info);
    const usage = secretUsage(target.volumeId);
    return {
      source: {
        type: 'network',
        protocol: 'iscsi',
        name: `${target.iqn}/${target.lun}`,
        host: { name: target.host, port: target.port },
        initiatorIqn: this.connector.initiator,
        ...(target.auth === undefined
          ? {}
          : { auth: { username: target.auth.username, secretUsage: usage } }),
      },
      resources: target.auth === undefined ? [] : [{ kind: 'libvirt-secret', usage }],
    };
  }

  async prepare(volumeId: string): Promise<void> {
    await this.secrets.define(secretUsage(volumeId));
  }

  async connect(info: ConnectionInfo): Promise<VolumeConnection> {
    const connection = this.describe(info);
    const password = iscsiTarget(info).auth?.password;
    if (password !== undefined) await this.secrets.ensure(secretUsage(info.data.volume_id), password);
    return connection;
  }

  /** Nothing is connected on the host: QEMU's initiator reads the LUN's new capacity when the disk is resized. */
  async extend(): Promise<void> {}

  async disconnect(info: ConnectionInfo): Promise<void> {
    for (const resource of this.describe(info).resources) {
      if (resource.kind === 'libvirt-secret') await this.secrets.remove(resource.usage);
    }
  }

  forget(volumeId: string): Promise<void> {
    return this.secrets.remove(secretUsage(volumeId));
  }
}

/** What every usage name of a volume's CHAP secret begins with: the reconciler knows its own by it. */
export const SECRET_USAGE_PREFIX = 'basalt-volume-';

/** The usage name of a volume's CHAP secret: one per volume, unique on a shared libvirtd. */
export function secretUsage(volumeId: string): string {
  return `${SECRET_USAGE_PREFIX}${volumeId}`;
}
