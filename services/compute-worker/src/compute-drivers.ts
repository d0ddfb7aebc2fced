import type { BasaltConfig } from '@basalt/config';
import type { CommandRunner } from '@basalt/exec';
import { initiatorName } from './connectors/initiator-name';
import { IscsiadmConnector } from './connectors/iscsiadm-connector';
import { QemuConnector } from './connectors/qemu-connector';
import type { VolumeConnector } from './connectors/volume-connector';
import { ImageCache } from './imagecache/image-cache';
import { InstanceDisks } from './imagecache/instance-disks';
import type { InstanceStorage } from './imagecache/instance-storage';
import { DomainNotFoundError } from './virt/errors';
import type { Hypervisor, SecretInventory, SecretStore } from './virt/hypervisor';
import { LibvirtDriver } from './virt/libvirt-driver';
import { LibvirtSecrets } from './virt/libvirt-secrets';
import { TracedHypervisor, TracedSecretStore } from './virt/traced';
import { Virsh } from './virt/virsh';
import type { VirshSessions } from './virt/virsh-session';

/** The compute host's drivers, as `[compute]` chooses them: what the compute manager is given. */
export interface ComputeDrivers {
  readonly hypervisor: Hypervisor;
  readonly secrets: SecretStore & SecretInventory;
  readonly connector: VolumeConnector;
  readonly storage: InstanceStorage;
}

/** `virshVia`: what runs virsh, the runner (a process per command) unless given sessions. */
export function createComputeDrivers(
  config: BasaltConfig,
  runner: CommandRunner,
  virshVia: CommandRunner | VirshSessions = runner,
): ComputeDrivers {
  const compute = config.compute;
  const virsh = new Virsh(virshVia, compute.libvirt_uri);
  // tracing wraps the drivers here, as middleware, so that the drivers stay free of it
  const hypervisor = new TracedHypervisor(
    new LibvirtDriver(virsh, { detachAttempts: compute.device_detach_attempts }),
  );
  const secrets = new TracedSecretStore(new LibvirtSecrets(virsh));
  const properties = {
    ip: compute.my_ip,
    initiator: initiatorName(compute.initiator_iqn, config.DEFAULT.host),
    host: config.DEFAULT.host,
  };
  const connector =
    compute.volume_connector === 'qemu'
      ? new QemuConnector(secrets, properties)
      : new IscsiadmConnector(runner, properties, {
          deviceTimeoutMs: compute.volume_device_timeout * 1000,
          nodesDir: compute.iscsi_nodes_dir,
          deviceInUse: (path) => deviceInUse(hypervisor, path),
        });
  const storage = new InstanceDisks(
    runner,
    new ImageCache(runner, compute.instances_path),
    compute.instances_path,
  );
  return { hypervisor, secrets, connector, storage };
}

/** Whether any domain on this host has `path` as a disk. */
async function deviceInUse(hypervisor: Hypervisor, path: string): Promise<boolean> {
  for (const name of await hypervisor.listDomains()) {
    // a domain undefined since the listing uses nothing
    const devices = await hypervisor.blockDevices(name).catch((error: unknown) => {
      if (error instanceof DomainNotFoundError) return [];
      throw error;
    });
    if (devices.some((d) => d.source === path)) return true;
  }
  return false;
}
