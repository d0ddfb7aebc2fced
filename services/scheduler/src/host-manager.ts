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

  update(host: string, capabilities: VolumeCapabilities, now = Date.now()): void {
    this.hosts.set(host, { host, capabilities, receivedAt: now, consumedGb: 0 });
  }

  consume(host: string, sizeGb: number): void {
    const state = this.hosts.get(host);
    if (state) this.hosts.set(host, { ...state, consumedGb: state.consumedGb + sizeGb });
  }

  all(): HostState[] {
    return [...this.hosts.values()];
  }
}

/** Free space the scheduler may still hand out on a host: reported free, minus the reserve, minus what it placed. */
export function usableGb(state: HostState): number {
  const c = state.capabilities;
  return (
    c.free_capacity_gb - Math.floor((c.total_capacity_gb * c.reserved_percentage) / 100) - state.consumedGb
  );
}
