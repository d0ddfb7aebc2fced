import type { VolumeCapabilities } from '@basalt/contracts';

export interface HostState {
  readonly host: string;
  readonly capabilities: VolumeCapabilities;
  readonly receivedAt: number;
  /** Gigabytes this scheduler handed out since the host's last report. */
  readonly consumedGb: number;
}

/**
 * The capabilities every volume host last reported, plus what this scheduler has placed on it
 * since: a burst of creates spreads over the hosts instead of piling onto the one that looked
 * emptiest at the last report.
 */
export class HostManager {
  private readonly hosts = new Map<string, HostState>();
  private readonly waiters = new Set<() => void>();

  update(host: string, capabilities: VolumeCapabilities, now = Date.now()): void {
    this.hosts.set(host, { host, capabilities, receivedAt: now, consumedGb: 0 });
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /**
   * Resolves once each of `hosts` has reported within `maxAgeMs`, or at `deadline` (epoch ms),
   * whichever comes first: a scheduler that just started waits for the reports it asked for.
   */
  async reportsFrom(hosts: ReadonlySet<string>, maxAgeMs: number, deadline: number): Promise<void> {
    const missing = () =>
      [...hosts].some((h) => {
        const state = this.hosts.get(h);
        return !state || Date.now() - state.receivedAt > maxAgeMs;
      });
    while (Date.now() < deadline && missing()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Counts `sizeGb` as placed on the host (a negative size gives it back). */
  consume(host: string, sizeGb: number): void {
    const state = this.hosts.get(host);
    if (state) this.hosts.set(host, { ...state, consumedGb: state.consumedGb + sizeGb });
  }

  all(): HostState[] {
    return [...this.hosts.values()];
  }

  /** The host's pool as Cinder names its part after the host: `backend#pool`. */
  poolOf(host: string): string | undefined {
    const c = this.hosts.get(host)?.capabilities;
    return c && `${c.volume_backend_name}#${c.pool_name}`;
  }
}

/**
 * Space the scheduler may still hand out on a host, minus the reserve and what it placed since the
 * last report. Thick backends: what is free. Thin ones (as Cinder): the capacity times the
 * oversubscription ratio less what is provisioned, and never more than the free space times it.
 */
export function usableGb(state: HostState): number {
  const c = state.capabilities;
  const reserve = Math.floor((c.total_capacity_gb * c.reserved_percentage) / 100);
  const available = c.thin_provisioning_support
    ? Math.min(
        c.total_capacity_gb * c.max_over_subscription_ratio - c.provisioned_capacity_gb,
        (c.free_capacity_gb - reserve) * c.max_over_subscription_ratio,
      )
    : c.free_capacity_gb - reserve;
  return Math.floor(available) - state.consumedGb;
}
