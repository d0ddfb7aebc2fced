import type { VolumeCapabilities } from '@basalt/contracts';
import { placeVolume, specMatches } from './filter-scheduler';
import { HostManager, usableGb } from './host-manager';

const caps = (free: number, zone = 'nova', total = 100, reserved = 0): VolumeCapabilities => ({
  volume_backend_name: 'file',
  pool_name: 'file',
  vendor_name: 'Open Source',
  driver_version: '1.0.0',
  storage_protocol: 'iSCSI',
  total_capacity_gb: total,
  free_capacity_gb: free,
  provisioned_capacity_gb: total - free,
  reserved_percentage: reserved,
  availability_zone: zone,
  thin_provisioning_support: false,
  max_over_subscription_ratio: 1,
});

describe('placeVolume', () => {
  const now = 1_000_000;
  const options = (up: string[]) => ({ upHosts: new Set(up), maxAgeMs: 60_000, now });

  test('takes the host with the most usable space; a burst spreads as space is consumed locally', () => {
    const hosts = new HostManager();
    hosts.update('a', caps(50), now);
    hosts.update('b', caps(40), now);
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const placement = placeVolume(
        hosts.all(),
        { sizeGb: 10, availabilityZone: 'nova' },
        options(['a', 'b']),
      );
      if (!('host' in placement)) throw new Error(placement.reason);
      picks.push(placement.host);
      hosts.consume(placement.host, 10);
    }
    expect(picks).toEqual(['a', 'a', 'b', 'a']);
  });

  test('skips hosts that are down, stale, in another zone, or too full (reserve counted)', () => {
    const hosts = new HostManager();
    hosts.update('down', caps(90), now);
    hosts.update('stale', caps(90), now - 120_000);
    hosts.update('elsewhere', caps(90, 'az2'), now);
    hosts.update('reserved', caps(30, 'nova', 100, 25), now);
    hosts.update('small', caps(10), now);
    const up = ['stale', 'elsewhere', 'reserved', 'small'];
    // 'reserved' reports 30G free but holds back 25% of 100G: 5G usable, less than 'small''s 10G
    expect(placeVolume(hosts.all(), { sizeGb: 5, availabilityZone: 'nova' }, options(up))).toEqual({
      host: 'small',
    });
    hosts.consume('small', 10);
    expect(placeVolume(hosts.all(), { sizeGb: 5, availabilityZone: 'nova' }, options(up))).toEqual({
      host: 'reserved',
    });
    const tooBig = placeVolume(hosts.all(), { sizeGb: 6, availabilityZone: 'nova' }, options(up));
    expect(tooBig).toEqual({
      reason:
        'No valid host was found. CapacityFilter rejected every host. Requested 6G; the most any host can take is 5G.',
    });
    const zone = placeVolume(hosts.all(), { sizeGb: 1, availabilityZone: 'az9' }, options(up));
    expect('reason' in zone && zone.reason).toContain('No host is in availability zone az9');
  });

  test('thin hosts may be oversubscribed up to the ratio, never past their free space times it', () => {
    const thin = (free: number, provisioned: number, ratio: number) => ({
      host: 't',
      receivedAt: now,
      consumedGb: 0,
      capabilities: {
        ...caps(free),
        thin_provisioning_support: true,
        provisioned_capacity_gb: provisioned,
        max_over_subscription_ratio: ratio,
      },
    });
    expect(usableGb(thin(80, 150, 2))).toBe(50);
    expect(usableGb(thin(10, 0, 20))).toBe(200);
    expect(usableGb(thin(80, 100, 1))).toBe(0);
  });

  test('no host at all is a readable reason, not a crash', () => {
    expect(placeVolume([], { sizeGb: 1, availabilityZone: 'nova' }, options([]))).toEqual({
      reason: 'No valid host was found. No volume host is up and reporting its capacity.',
    });
  });
});

describe('extra specs (CapabilitiesFilter)', () => {
  const now = 1_000_000;
  const options = { upHosts: new Set(['file-host', 'lvm-host']), maxAgeMs: 60_000, now };
  const hosts = () => {
    const manager = new HostManager();
    manager.update('file-host', caps(50), now);
    manager.update('lvm-host', { ...caps(40), volume_backend_name: 'lvm', pool_name: 'nova-volumes' }, now);
    return manager.all();
  };
  const place = (extraSpecs: Record<string, string>) =>
    placeVolume(hosts(), { sizeGb: 1, availabilityZone: 'nova', extraSpecs }, options);

  test('a host must report every unscoped or capabilities: spec; other scopes are ignored', () => {
    expect(place({ volume_backend_name: 'lvm' })).toEqual({ host: 'lvm-host' });
    expect(place({ 'capabilities:pool_name': 'nova-volumes' })).toEqual({ host: 'lvm-host' });
    expect(place({ 'RESKEY:availability_zones': 'elsewhere', storage_protocol: 'iSCSI' })).toEqual({
      host: 'file-host',
    });
    const refused = place({ vendor_name: 'Nobody' });
    expect(refused).toEqual({
      reason: expect.stringMatching(/^No valid host was found. CapabilitiesFilter/),
    });
    expect(place({ no_such_capability: 'x' })).toHaveProperty('reason');
  });

  test("Cinder's operators", () => {
    expect(specMatches('True', '<is> true')).toBe(true);
    expect(specMatches('False', '<is> True')).toBe(false);
    expect(specMatches('nova-volumes', '<in> volumes')).toBe(true);
    expect(specMatches('lvm', '<or> file <or> lvm')).toBe(true);
    expect(specMatches('ceph', '<or> file <or> lvm')).toBe(false);
    expect(specMatches('100', '>= 50')).toBe(true);
    expect(specMatches('10', '>= 50')).toBe(false);
    expect(specMatches('10', '== 10.0')).toBe(true);
    expect(specMatches('iSCSI', 's== iSCSI')).toBe(true);
    expect(specMatches('iSCSI', 'iscsi')).toBe(false);
  });
});
