import { type HostState, usableGb } from './host-manager';

export interface PlacementRequest {
  readonly sizeGb: number;
  readonly availabilityZone: string;
}

export interface HostFilter {
  readonly name: string;
  passes(host: HostState, request: PlacementRequest): boolean;
}

export interface SchedulerOptions {
  /** Hosts whose services row shows a recent heartbeat and that are not disabled. */
  readonly upHosts: ReadonlySet<string>;
  readonly maxAgeMs: number;
  readonly now: number;
}

export const availabilityZoneFilter: HostFilter = {
  name: 'AvailabilityZoneFilter',
  passes: (host, request) => host.capabilities.availability_zone === request.availabilityZone,
};

export const capacityFilter: HostFilter = {
  name: 'CapacityFilter',
  passes: (host, request) => usableGb(host) >= request.sizeGb,
};

export type Placement = { readonly host: string } | { readonly reason: string };

/**
 * Cinder's filter scheduler in small: drop hosts that are down, stale or fail a filter, then take
 * the one with the most usable free space (ties by name, so placement is reproducible).
 */
export function placeVolume(
  hosts: readonly HostState[],
  request: PlacementRequest,
  options: SchedulerOptions,
  filters: readonly HostFilter[] = [availabilityZoneFilter, capacityFilter],
): Placement {
  let candidates = hosts.filter(
    (h) => options.upHosts.has(h.host) && options.now - h.receivedAt <= options.maxAgeMs,
  );
  if (candidates.length === 0) {
    return { reason: 'No valid host was found. No volume host is up and reporting its capacity.' };
  }
  for (const filter of filters) {
    const passed = candidates.filter((h) => filter.passes(h, request));
    if (passed.length === 0) {
      const detail =
        filter === capacityFilter
          ? ` Requested ${request.sizeGb}G; the most any host can take is ${Math.max(...candidates.map(usableGb), 0)}G.`
          : ` No host is in availability zone ${request.availabilityZone}.`;
      return { reason: `No valid host was found. ${filter.name} rejected every host.${detail}` };
    }
    candidates = passed;
  }
  const best = [...candidates].sort((a, b) => usableGb(b) - usableGb(a) || a.host.localeCompare(b.host))[0];
  return best ? { host: best.host } : { reason: 'No valid host was found.' };
}
