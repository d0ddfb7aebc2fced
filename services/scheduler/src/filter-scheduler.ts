import { type HostState, usableGb } from './host-manager';

export interface PlacementRequest {
  readonly sizeGb: number;
  readonly availabilityZone: string;
  /** The volume type's extra specs. */
  readonly extraSpecs?: Readonly<Record<string, string>>;
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

/**
 * Cinder's CapabilitiesFilter: every extra spec that is unscoped or scoped `capabilities:` must be
 * matched by what the host reports; specs of other scopes are for others to read.
 */
export const capabilitiesFilter: HostFilter = {
  name: 'CapabilitiesFilter',
  passes: (host, request) =>
    Object.entries(request.extraSpecs ?? {}).every(([key, wanted]) => {
      const scope = key.split(':');
      if (scope.length > 1 && scope[0] !== 'capabilities') return true;
      const reported = (host.capabilities as unknown as Record<string, unknown>)[scope.at(-1) as string];
      return reported !== undefined && reported !== null && specMatches(String(reported), wanted);
    }),
};

/** Cinder's extra_specs_ops: `<is>`, `<in>`, `<or>`, `s==`, `==`, `!=`, `>=`, `<=`, else equality. */
export function specMatches(value: string, wanted: string): boolean {
  const words = wanted.trim().split(/\s+/);
  const [op, ...rest] = words;
  const arg = rest.join(' ');
  switch (op) {
    case '<is>':
      return value.toLowerCase() === arg.toLowerCase();
    case '<in>':
      return value.includes(arg);
    case '<or>':
      return wanted.split('<or>').some((w) => w.trim() === value);
    case 's==':
      return value === arg;
    case '==':
      return Number(value) === Number(arg);
    case '!=':
      return Number(value) !== Number(arg);
    case '>=':
      return Number(value) >= Number(arg);
    case '<=':
      return Number(value) <= Number(arg);
    default:
      return value === wanted;
  }
}

export type Placement = { readonly host: string } | { readonly reason: string };

/**
 * Cinder's filter scheduler in small: drop hosts that are down, stale or fail a filter, then take
 * the one with the most usable free space (ties by name, so placement is reproducible).
 */
export function placeVolume(
  hosts: readonly HostState[],
  request: PlacementRequest,
  options: SchedulerOptions,
  filters: readonly HostFilter[] = [availabilityZoneFilter, capabilitiesFilter, capacityFilter],
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
          : filter === capabilitiesFilter
            ? ` No host reports what the volume type's extra specs ask for (${JSON.stringify(request.extraSpecs)}).`
            : ` No host is in availability zone ${request.availabilityZone}.`;
      return { reason: `No valid host was found. ${filter.name} rejected every host.${detail}` };
    }
    candidates = passed;
  }
  const best = [...candidates].sort((a, b) => usableGb(b) - usableGb(a) || a.host.localeCompare(b.host))[0];
  return best ? { host: best.host } : { reason: 'No valid host was found.' };
}
