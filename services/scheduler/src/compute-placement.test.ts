import type { ComputeCapabilities } from '@basalt/contracts';
import { ComputeHostManager, freeResources, placeInstance } from './compute-placement';

const caps = (
  memory: number,
  vcpus: number,
  disk: number,
  used = { memory: 0, vcpus: 0, disk: 0 },
): ComputeCapabilities => ({
  memory_mb: memory,
  vcpus,
  local_gb: disk,
  memory_mb_used: used.memory,
  vcpus_used: used.vcpus,
  local_gb_used: used.disk,
  hypervisor_type: 'QEMU',
  availability_zone: 'nova',
});
const ratios = { ram: 1.5, cpu: 16, disk: 1 };
const now = 1_000_000;
const options = (up: string[]) => ({ upHosts: new Set(up), maxAgeMs: 60_000, now, ratios });
const small = { memoryMb: 2048, vcpus: 1, diskGb: 30 };

describe('placeInstance', () => {
  test('counts RAM, cores and disk under the allocation ratios, minus what instances use', () => {
    const hosts = new ComputeHostManager();
    hosts.update('a', caps(4096, 2, 100, { memory: 1024, vcpus: 1, disk: 10 }), now);
    expect(freeResources(hosts.all()[0] as never, ratios)).toEqual({ memoryMb: 5120, vcpus: 31, diskGb: 90 });
  });

  test('takes the host with the most free RAM; a burst spreads as this scheduler claims', () => {
    const hosts = new ComputeHostManager();
    hosts.update('a', caps(8192, 4, 200), now);
    hosts.update('b', caps(6144, 4, 200), now);
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const placement = placeInstance(hosts.all(), small, options(['a', 'b']));
      if (!('host' in placement)) throw new Error(placement.reason);
      picks.push(placement.host);
      hosts.claim(placement.host, small);
    }
    expect(picks).toEqual(['a', 'a', 'b', 'a']);
    hosts.claim('a', small, -1);
    expect(freeResources(hosts.all()[0] as never, ratios).memoryMb).toBe(12288 - 2 * 2048);
  });

  test('each filter that rejects every host says so, with the most any host has', () => {
    const hosts = new ComputeHostManager();
    hosts.update('a', caps(1024, 1, 20), now);
    expect(placeInstance(hosts.all(), small, options(['a']))).toEqual({
      reason:
        'No valid host was found. RamFilter rejected every host. Requested 2048 MB of RAM; the most any host has is 1536 MB.',
    });
    expect(placeInstance(hosts.all(), { memoryMb: 512, vcpus: 17, diskGb: 1 }, options(['a']))).toMatchObject(
      {
        reason: expect.stringContaining('CoreFilter rejected every host'),
      },
    );
    expect(placeInstance(hosts.all(), { memoryMb: 512, vcpus: 1, diskGb: 21 }, options(['a']))).toMatchObject(
      {
        reason: expect.stringContaining(
          'DiskFilter rejected every host. Requested 21 GB of disk; the most any host has is 20 GB.',
        ),
      },
    );
  });

  test('hosts that are down or whose report is stale are not candidates', () => {
    const hosts = new ComputeHostManager();
    expect(hosts.update('down', caps(8192, 4, 100), now)).toBe(true);
    expect(hosts.update('down', caps(8192, 4, 100), now)).toBe(false);
    hosts.update('stale', caps(8192, 4, 100), now - 120_000);
    expect(placeInstance(hosts.all(), small, options(['stale']))).toEqual({
      reason: 'No valid host was found. No compute host is up and reporting its resources.',
    });
  });
});
