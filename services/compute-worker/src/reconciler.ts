import type { ReconcileReport } from '@basalt/contracts';
import {
  type BlockDeviceMappingRepository,
  type InstanceRecord,
  type InstanceRepository,
  instanceName,
  type VolumeRepository,
} from '@basalt/db';
import type { Logger } from '@basalt/log';
import { templatePattern } from '@basalt/naming';
import { ReconcileFindings } from '@basalt/service';
import { SECRET_USAGE_PREFIX } from './connectors/qemu-connector';
import type { InstanceStorage } from './imagecache/instance-storage';
import { DOMAIN_MARKER_NS } from './virt/domain-xml';
import type { Hypervisor, SecretInventory, SecretStore } from './virt/hypervisor';

export interface ComputeReconcilerOptions {
  readonly host: string;
  /** `[compute] instance_name_template`: the names this host's domains and folders are given. */
  readonly instanceNameTemplate: string;
}

export interface ComputeReconcilerDeps {
  readonly instances: InstanceRepository;
  readonly mappings: BlockDeviceMappingRepository;
  readonly volumes: Pick<VolumeRepository, 'known'>;
  readonly hypervisor: Pick<Hypervisor, 'listDomains' | 'definition' | 'destroy'>;
  readonly secrets: Pick<SecretStore, 'remove'> & SecretInventory;
  readonly storage: Pick<InstanceStorage, 'folders' | 'removeInstance'>;
  readonly log: Logger;
}

const NO_INSTANCE = 'no live instance of this host has this name';
const VOLUME_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Compares one compute host's rows with what the host holds — libvirt's domains and `iscsi`
 * secrets, the instance folders — and removes what Basalt made there that no row needs
 * (recognised by its name and marker: the template's name and the metadata element in the
 * domain, the secrets' usage prefix naming a volume of this database, live or deleted, that no
 * domain's definition refers to, the marker file in the folder), reporting everything else. The host is read before the database: an instance or a
 * mapping is in the database before anything of it is on the host, so work under way is never
 * taken for an orphan.
 */
export class ComputeReconciler {
  private readonly ours: RegExp;

  constructor(
    private readonly deps: ComputeReconcilerDeps,
    private readonly options: ComputeReconcilerOptions,
  ) {
    this.ours = templatePattern(options.instanceNameTemplate);
  }

  async reconcile(dryRun: boolean): Promise<ReconcileReport> {
    const { hypervisor, secrets, storage, instances, mappings } = this.deps;
    const domains = await hypervisor.listDomains();
    const usages = await secrets.usages();
    const folders = await storage.folders();
    const live = await instances.onHost(this.options.host);
    const byName = new Map(live.map((i) => [this.name(i), i]));
    const found = new ReconcileFindings(dryRun, this.deps.log);
    for (const name of domains) {
      if (byName.has(name) || !this.ours.test(name)) {
        // another template's domains are other services' (or other hosts'): none of this host's business
        if (!byName.has(name) && this.looksOurs(name)) {
          found.tell({ kind: 'domain', name, reason: 'not made by Basalt' });
        }
        continue;
      }
      const xml = await hypervisor.definition(name);
      if (xml === undefined) continue;
      await found.orphan('domain', name, xml.includes(DOMAIN_MARKER_NS), NO_INSTANCE, () =>
        hypervisor.destroy(name),
      );
    }
    const domainNames = new Set(domains);
    for (const [name, instance] of byName) {
      if (instance.vmState === 'active' && instance.taskState === null && !domainNames.has(name)) {
        found.tell({
          kind: 'domain',
          name,
          reason: `instance ${instance.id} is ACTIVE but its domain is missing`,
        });
      }
    }

    // every volume that a live mapping of this host's instances names keeps its secret
    const mapped = new Set<string>();
    for (const instance of live) {
      for (const m of await mappings.forInstance(instance.id)) mapped.add(m.volumeId);
    }
    // the secrets some domain's disks name, whatever the domain: read only once a secret may go
    let named: Set<string> | undefined;
    const namedByDomains = async () => {
      if (named) return named;
      named = new Set();
      for (const name of domains) {
        const xml = (await hypervisor.definition(name)) ?? '';
        for (const m of xml.matchAll(/<secret [^>]*usage=['"]([^'"]+)['"]/g)) named.add(m[1] as string);
      }
      return named;
    };
    for (const usage of usages) {
      if (!usage.startsWith(SECRET_USAGE_PREFIX)) continue;
      const volumeId = usage.slice(SECRET_USAGE_PREFIX.length);
      if (mapped.has(volumeId)) continue;
      // a shared libvirtd holds the secrets of other deployments too: only this database's volumes are ours
      const volume = VOLUME_ID.test(volumeId) ? await this.deps.volumes.known(volumeId) : undefined;
      const inUse = volume !== undefined && (await namedByDomains()).has(usage);
      await found.act(
        {
          kind: 'secret',
          name: usage,
          action: volume && !inUse ? 'remove' : 'report',
          reason: !volume
            ? 'names no volume of this database'
            : inUse
              ? 'a domain still refers to it'
              : volume.deleted
                ? `volume ${volumeId} is deleted`
                : `no live attachment on this host uses volume ${volumeId}`,
        },
        () => secrets.remove(usage),
      );
    }

    for (const { name, marked } of folders) {
      if (byName.has(name)) continue;
      await found.orphan('folder', name, marked && this.ours.test(name), NO_INSTANCE, () =>
        storage.removeInstance(name),
      );
    }
    return found.report(this.options.host);
  }

  /** A name of the template's shape up to its number: the same prefix, whatever follows. */
  private looksOurs(name: string): boolean {
    const prefix = this.options.instanceNameTemplate.split('%')[0] ?? '';
    return prefix !== '' && name.startsWith(prefix);
  }

  private name(instance: InstanceRecord): string {
    return instanceName(this.options.instanceNameTemplate, instance.seq);
  }
}
