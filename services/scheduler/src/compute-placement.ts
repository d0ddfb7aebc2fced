import type { ComputeCapabilities } from '@basalt/contracts';

export interface ComputeHostState {
  readonly host: string;
  readonly capabilities: ComputeCapabilities;
  readonly receivedAt: number;
  /** What this scheduler placed on the host since its last report. */
  readonly claimed: Resources;
}

export interface Resources {
  readonly memoryMb: number;
  readonly vcpus: number;
  readonly diskGb: number;
}

export interface AllocationRatios {
  readonly ram: number;
  readonly cpu: number;
  readonly disk: number;
}

const NONE: Resources = { memoryMb: 0, vcpus: 0, diskGb: 0 };

/**
 * The resources every compute host last reported, plus what this scheduler placed on it since,
 * so a burst of boots spreads instead of piling onto the host that looked emptiest.
 */
export class ComputeHostManager {
  private readonly hosts = new Map<string, ComputeHostState>();

  /** Records a report; true when the host was not known before. */
  update(host: string, capabilities: ComputeCapabilities, now = Date.now()): boolean {
    const known = this.hosts.has(host);
    this.hosts.set(host, { host, capabilities, receivedAt: now, claimed: NONE });
    return !known;
  }

  /** Counts `r` as placed on the host (`sign` -1 gives it back). */
  claim(host: string, r: Resources, sign: 1 | -1 = 1): void {
    const state = this.hosts.get(host);
    if (!state) return;
    const c = state.claimed;
    this.hosts.set(host, {
      ...state,
      claimed: {
        memoryMb: c.memoryMb + sign * r.memoryMb,
        vcpus: c.vcpus + sign * r.vcpus,
        diskGb: c.diskGb + sign * r.diskGb,
      },
    });
  }

  all(): ComputeHostState[] {
    return [...this.hosts.values()];
  }
}

/** What is left on a host under the allocation ratios (nova's RAM, core and disk filters). */
export function freeResources(state: ComputeHostState, ratios: AllocationRatios): Resources {
  const c = state.capabilities;
  return {
    memoryMb: Math.floor(c.memory_mb * ratios.ram - c.memory_mb_used - state.claimed.memoryMb),
    vcpus: Math.floor(c.vcpus * ratios.cpu - c.vcpus_used - state.claimed.vcpus),
    diskGb: Math.floor(c.local_gb * ratios.disk - c.local_gb_used - state.claimed.diskGb),
  };
}

interface Filter {
  readonly name: string;
  readonly passes: (free: Resources, want: Resources) => boolean;
  readonly detail: (want: Resources, best: Resources) => string;
}

const FILTERS: readonly Filter[] = [
  {
    name: 'RamFilter',
    passes: (free, want) => free.memoryMb >= want.memoryMb,
    detail: (want, best) =>
      `Requested ${want.memoryMb} MB of RAM; the most any host has is ${best.memoryMb} MB.`,
  },
  {
    name: 'CoreFilter',
    passes: (free, want) => free.vcpus >= want.vcpus,
    detail: (want, best) => `Requested ${want.vcpus} vCPUs; the most any host has is ${best.vcpus}.`,
  },
  {
    name: 'DiskFilter',
    passes: (free, want) => free.diskGb >= want.diskGb,
    detail: (want, best) =>
      `Requested ${want.diskGb} GB of disk; the most any host has is ${best.diskGb} GB.`,
  },
];

export type Placement = { readonly host: string } | { readonly reason: string };

/**
 * Nova's filter scheduler in small: hosts that are up and reported recently, through the RAM,
 * core and disk filters, weighed by free RAM (ties by name, so placement is reproducible).
 */
export function placeInstance(
  hosts: readonly ComputeHostState[],
  want: Resources,
  options: { upHosts: ReadonlySet<string>; maxAgeMs: number; now: number; ratios: AllocationRatios },
): Placement {
  let candidates = hosts
    .filter((h) => options.upHosts.has(h.host) && options.now - h.receivedAt <= options.maxAgeMs)
    .map((h) => ({ host: h.host, free: freeResources(h, options.ratios) }));
  if (candidates.length === 0) {
    return { reason: 'No valid host was found. No compute host is up and reporting its resources.' };
  }
  for (const filter of FILTERS) {
    const passed = candidates.filter((c) => filter.passes(c.free, want));
    if (passed.length === 0) {
      const best = {
        memoryMb: Math.max(...candidates.map((c) => c.free.memoryMb)),
        vcpus: Math.max(...candidates.map((c) => c.free.vcpus)),
        diskGb: Math.max(...candidates.map((c) => c.free.diskGb)),
      };
      return {
        reason: `No valid host was found. ${filter.name} rejected every host. ${filter.detail(want, best)}`,
      };
    }
    candidates = passed;
  }
  const best = [...candidates].sort(
    (a, b) => b.free.memoryMb - a.free.memoryMb || a.host.localeCompare(b.host),
  )[0];
  return best ? { host: best.host } : { reason: 'No valid host was found.' };
}
