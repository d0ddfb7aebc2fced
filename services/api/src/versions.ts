import { VersionNotAcceptableError } from '@basalt/errors';

export const MIN_VERSION = '3.0';
export const MAX_VERSION = '3.60';
const UPDATED = '2024-01-01T00:00:00Z';

const parse = (v: string) => v.split('.').map((n) => Number.parseInt(n, 10)) as [number, number];
const compare = (a: string, b: string) => {
  const [a1, a2] = parse(a);
  const [b1, b2] = parse(b);
  return a1 - b1 || a2 - b2;
};

/** Whether microversion `version` is `min` or later. */
export function atLeast(version: string, min: string): boolean {
  return compare(version, min) >= 0;
}

/**
 * The microversion `header` asks of `service` (`OpenStack-API-Version: <service> X.Y`), checked
 * against `[min, max]`; the minimum when it asks for none.
 */
export function negotiateMicroversion(
  header: string | string[] | undefined,
  service: string,
  min: string,
  max: string,
): string {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  const match = new RegExp(`(?:^|,)\\s*${service}\\s+(latest|\\d+\\.\\d+)\\s*(?:,|$)`, 'i').exec(value);
  if (!match) return min;
  const asked = (match[1] as string).toLowerCase();
  if (asked === 'latest') return max;
  if (compare(asked, min) < 0 || compare(asked, max) > 0) {
    throw new VersionNotAcceptableError(
      `Version ${asked} is not supported by the API. Minimum is ${min} and maximum is ${max}.`,
    );
  }
  return asked;
}

/** The microversion a request asks for (`OpenStack-API-Version: volume 3.x`), checked against what is served. */
export function negotiateVersion(header: string | string[] | undefined): string {
  return negotiateMicroversion(header, 'volume', MIN_VERSION, MAX_VERSION);
}

export function versionDocument(baseUrl: string) {
  return {
    id: 'v3.0',
    status: 'CURRENT',
    version: MAX_VERSION,
    min_version: MIN_VERSION,
    updated: UPDATED,
    links: [
      { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
      { rel: 'self', href: `${baseUrl}/v3/` },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}
