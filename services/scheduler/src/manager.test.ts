import { adminContext } from '@basalt/context';
import type { VolumeCapabilities, VolumeRpcApi } from '@basalt/contracts';
import type {
  ServiceDirectory,
  SnapshotRepository,
  VolumeRecord,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { RpcConnectionError, RpcUndeliverableError } from '@basalt/rpc';
import pino from 'pino';
import { HostManager, usableGb } from './host-manager';
import { SchedulerManager } from './manager';

const log = pino({ level: 'silent' });
const caps: VolumeCapabilities = {
  volume_backend_name: 'file',
  pool_name: 'file',
  vendor_name: 'Open Source',
  driver_version: '1.0.0',
  storage_protocol: 'iSCSI',
  total_capacity_gb: 100,
  free_capacity_gb: 100,
  provisioned_capacity_gb: 0,
  reserved_percentage: 0,
  availability_zone: 'nova',
  thin_provisioning_support: false,
  max_over_subscription_ratio: 1,
};

/**
 * A scheduler over an in-memory volume whose placement write answers `placed` (or throws), and a
 * record of where it cast and what it wrote.
 */
function fixture(
  volume: Partial<VolumeRecord>,
  placed: boolean | Error = true,
  options: { reported?: boolean; capabilitiesWaitMs?: number; castError?: Error; storedAgeMs?: number } = {},
) {
  const casts: string[] = [];
  const writes: string[] = [];
  const hosts = new HostManager();
  if (options.reported ?? true) hosts.update('host-a', caps);
  const volumes = {
    placeOnHosts: async (placements: { id: string; host: string }[]) => {
      if (placed instanceof Error) throw placed;
      writes.push(...placements.map((p) => `placed on ${p.host}`));
      return placements.map(() => placed);
    },
    failUnplaced: async (_id: string, reason: string) => {
      if (volume.host) return false;
      writes.push(`error: ${reason}`);
      return true;
    },
    find: async () => ({ id: 'v1', status: 'creating', host: null, ...volume }) as VolumeRecord,
    transition: async (_id: string, move: { to: string }, changes: { statusReason?: string }) => {
      writes.push(`${move.to}: ${changes.statusReason}`);
      return undefined;
    },
  } as unknown as VolumeRepository;
  const services = {
    // host-a is up from the start; another host once a test makes it report
    list: async () =>
      ['host-a', ...hosts.all().map((h) => h.host)]
        .filter((host, i, all) => all.indexOf(host) === i)
        .map((host) => ({ binary: 'basalt-volume', host, up: true, disabled: false })),
    // host-a's last report as the services table keeps it, when a test gives its age
    lastReports: async (binary: string) =>
      binary === 'basalt-volume' && options.storedAgeMs !== undefined
        ? [{ host: 'host-a', capabilities: caps, ageMs: options.storedAgeMs }]
        : [],
  } as unknown as ServiceDirectory;
  const volumeRpc = {
    create_volume: async (_ctx: unknown, host: string) => {
      if (options.castError) throw options.castError;
      casts.push(host);
    },
  } as unknown as VolumeRpcApi;
  const manager = new SchedulerManager(
    {
      services,
      volumes,
      snapshots: {} as SnapshotRepository,
      volumeTypes: {} as VolumeTypeRepository,
      volumeRpc,
      hosts,
    },
    {
      capabilitiesMaxAgeMs: 60_000,
      capabilitiesWaitMs: options.capabilitiesWaitMs ?? 0,
      resumeStalledAfterSec: 300,
    },
  );
  const request = (size: number, zone = 'nova') => ({ volume_id: 'v1', size, availability_zone: zone });
  const usable = () => usableGb(hosts.all()[0]!);
  return { manager, casts, writes, request, usable, hosts };
}

describe('SchedulerManager.createVolume', () => {
  test('places from the request alone and hands the volume to its host', async () => {
    const f = fixture({});
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual(['placed on host-a']);
    expect(f.casts).toEqual(['host-a']);
    expect(f.usable()).toBe(90);
  });

  test("a volume made from a source goes to the source's host, though another has more room", async () => {
    const f = fixture({});
    f.hosts.update('host-b', { ...caps, free_capacity_gb: 500, total_capacity_gb: 500 });
    await f.manager.createVolume(adminContext(), { ...f.request(10), volume_id: 'v0' }, log);
    expect(f.casts).toEqual(['host-b']);
    f.casts.length = 0;
    f.writes.length = 0;
    await f.manager.createVolume(adminContext(), { ...f.request(10), resource_backend: 'host-a' }, log);
    expect(f.writes).toEqual(['placed on host-a']);
    expect(f.casts).toEqual(['host-a']);
    expect(f.usable()).toBe(90);
  });

  test("no room on the source's host: error, even though another host has room", async () => {
    const f = fixture({});
    f.hosts.update('host-b', { ...caps, free_capacity_gb: 500, total_capacity_gb: 500 });
    await f.manager.createVolume(adminContext(), { ...f.request(200), resource_backend: 'host-a' }, log);
    expect(f.writes).toEqual([expect.stringMatching(/^error: No valid host was found/)]);
    expect(f.casts).toEqual([]);
  });

  test('a redelivered request hands the volume to the host chosen the first time and counts no space twice', async () => {
    const f = fixture({ host: 'host-a' }, false);
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.casts).toEqual(['host-a']);
    expect(f.usable()).toBe(100);
  });

  test('no host: the volume goes to error with the reason, nothing is cast', async () => {
    const f = fixture({});
    await f.manager.createVolume(adminContext(), f.request(10, 'elsewhere'), log);
    expect(f.writes).toEqual([
      expect.stringMatching(/^error: No valid host was found\. AvailabilityZoneFilter/),
    ]);
    expect(f.casts).toEqual([]);
  });

  test('no host now, but placed by an earlier delivery: handed to that host, not failed', async () => {
    const f = fixture({ host: 'host-a' });
    await f.manager.createVolume(adminContext(), f.request(1000), log);
    expect(f.writes).toEqual([]);
    expect(f.casts).toEqual(['host-a']);
  });

  test('a placement write that fails gives the space back and throws for the retry', async () => {
    const f = fixture({}, new Error('Connection terminated unexpectedly'));
    await expect(f.manager.createVolume(adminContext(), f.request(10), log)).rejects.toThrow(
      'Connection terminated',
    );
    expect(f.usable()).toBe(100);
    expect(f.casts).toEqual([]);
  });

  test('a volume deleted meanwhile is left alone', async () => {
    const f = fixture({ status: 'deleted' }, false);
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.casts).toEqual([]);
  });
});

describe('SchedulerManager after a restart and during a broker outage', () => {
  test('a request that arrives before the hosts reported waits for their report instead of failing', async () => {
    const f = fixture({}, true, { reported: false, capabilitiesWaitMs: 10_000 });
    const created = f.manager.createVolume(adminContext(), f.request(10), log);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.writes).toEqual([]);
    f.hosts.update('host-a', caps);
    await created;
    expect(f.writes).toEqual(['placed on host-a']);
    expect(f.casts).toEqual(['host-a']);
  });

  test("a restarted scheduler places at once from the host's stored report", async () => {
    const f = fixture({}, true, { reported: false, capabilitiesWaitMs: 60_000, storedAgeMs: 5_000 });
    await f.manager.restoreReports(log);
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual(['placed on host-a']);
    expect(f.casts).toEqual(['host-a']);
  });

  test('a stored report older than capabilities_max_age is not placed on', async () => {
    const f = fixture({}, true, { reported: false, capabilitiesWaitMs: 100, storedAgeMs: 120_000 });
    await f.manager.restoreReports(log);
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual([expect.stringMatching(/^error: No valid host was found/)]);
  });

  test('past the wait with no report, the volume fails with the reason', async () => {
    const f = fixture({}, true, { reported: false, capabilitiesWaitMs: 100 });
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual([expect.stringMatching(/^error: No valid host was found/)]);
  });

  test("a cast lost to the broker's outage leaves the placed volume to the host's sweep", async () => {
    const f = fixture({}, true, { castError: new RpcConnectionError('broker connection closed') });
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual(['placed on host-a']);
  });

  test('a host that never listened fails the volume with the reason', async () => {
    const f = fixture({}, true, { castError: new RpcUndeliverableError('no server is listening') });
    await f.manager.createVolume(adminContext(), f.request(10), log);
    expect(f.writes).toEqual([
      'placed on host-a',
      expect.stringMatching(/^error: volume host host-a is not listening/),
    ]);
  });
});
