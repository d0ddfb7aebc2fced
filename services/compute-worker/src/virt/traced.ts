import { withLibvirtSpan } from '@basalt/trace';
import type { BlockDevice, DomainState, Hypervisor, SecretInventory, SecretStore } from './hypervisor';

/**
 * A hypervisor whose every operation is a `libvirt <operation>` span naming its domain, so that a
 * handler's trace shows which libvirt step took the time or failed (the virsh commands inside are
 * the runner's command spans). The driver itself knows nothing of tracing.
 */
export class TracedHypervisor implements Hypervisor {
  constructor(private readonly inner: Hypervisor) {}

  checkForSetup(): Promise<void> {
    return withLibvirtSpan('check-for-setup', {}, () => this.inner.checkForSetup());
  }

  spawn(name: string, xml: string): Promise<void> {
    return withLibvirtSpan('define-and-start', domain(name), () => this.inner.spawn(name, xml));
  }

  state(name: string): Promise<DomainState | undefined> {
    return withLibvirtSpan('domstate', domain(name), () => this.inner.state(name));
  }

  destroy(name: string): Promise<void> {
    return withLibvirtSpan('destroy-and-undefine', domain(name), () => this.inner.destroy(name));
  }

  softReboot(name: string, timeoutMs: number): Promise<boolean> {
    return withLibvirtSpan('soft-reboot', domain(name), () => this.inner.softReboot(name, timeoutMs));
  }

  hardReboot(name: string, xml: string): Promise<void> {
    return withLibvirtSpan('hard-reboot', domain(name), () => this.inner.hardReboot(name, xml));
  }

  blockDevices(name: string): Promise<readonly BlockDevice[]> {
    return withLibvirtSpan('domblklist', domain(name), () => this.inner.blockDevices(name));
  }

  attachDisk(name: string, diskXml: string): Promise<void> {
    return withLibvirtSpan('attach-device', domain(name), () => this.inner.attachDisk(name, diskXml));
  }

  /** The span lasts until the guest let go of the disk: the detach and its polling. */
  detachDisk(name: string, target: string, diskXml: string, timeoutMs: number): Promise<void> {
    return withLibvirtSpan('detach-device', { ...domain(name), 'libvirt.disk.target': target }, () =>
      this.inner.detachDisk(name, target, diskXml, timeoutMs),
    );
  }

  resizeDisk(name: string, target: string, bytes: number): Promise<boolean> {
    return withLibvirtSpan('blockresize', { ...domain(name), 'libvirt.disk.target': target }, () =>
      this.inner.resizeDisk(name, target, bytes),
    );
  }

  listDomains(): Promise<readonly string[]> {
    return withLibvirtSpan('list', {}, () => this.inner.listDomains());
  }

  definition(name: string): Promise<string | undefined> {
    return withLibvirtSpan('dumpxml', domain(name), () => this.inner.definition(name));
  }
}

/** A secret store whose every operation is a `libvirt secret-…` span naming the secret's usage (never its value). */
export class TracedSecretStore implements SecretStore, SecretInventory {
  constructor(private readonly inner: SecretStore & SecretInventory) {}

  define(usage: string): Promise<string> {
    return withLibvirtSpan('secret-define', secret(usage), () => this.inner.define(usage));
  }

  ensure(usage: string, value: string): Promise<string> {
    return withLibvirtSpan('secret-set-value', secret(usage), () => this.inner.ensure(usage, value));
  }

  remove(usage: string): Promise<void> {
    return withLibvirtSpan('secret-undefine', secret(usage), () => this.inner.remove(usage));
  }

  lookup(usage: string): Promise<string | undefined> {
    return withLibvirtSpan('secret-lookup', secret(usage), () => this.inner.lookup(usage));
  }

  usages(): Promise<readonly string[]> {
    return withLibvirtSpan('secret-list', {}, () => this.inner.usages());
  }
}

function domain(name: string) {
  return { 'libvirt.domain': name };
}

function secret(usage: string) {
  return { 'libvirt.secret.usage': usage };
}
