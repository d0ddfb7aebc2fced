import type { RequestContext } from '@basalt/context';
import type { ComputeRpcApi, SchedulerRpcApi } from '@basalt/contracts';
import type {
  BlockDeviceMapping,
  BlockDeviceMappingRepository,
  ImageRecord,
  ImageRepository,
  InstanceRecord,
  InstanceRepository,
  Move,
  VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { ConflictError, InvalidInputError, InvalidStateError, NotFoundError } from '@basalt/errors';
import { ComputeApi } from './compute-api';

const ctx: RequestContext = { requestId: 'req-1', projectId: 'p1', userId: 'u1', roles: [], isAdmin: false };
const server = (over: Partial<InstanceRecord> = {}): InstanceRecord =>
  ({
    id: '6b9c4f3e-1a2b-4c3d-8e9f-0a1b2c3d4e5f',
    projectId: 'p1',
    vmState: 'active',
    taskState: null,
    host: 'compute1',
    ephemeralGb: 20,
    ...over,
  }) as InstanceRecord;
const VOLUME = '99999999-8888-4777-8666-555555555555';

/** The compute API over in-memory rows; records the casts and the volume moves it makes. */
function fixture(instance: InstanceRecord, volume: Partial<VolumeRecord> | undefined, castFails = false) {
  const casts: string[] = [];
  const moves: string[] = [];
  const mappings: BlockDeviceMapping[] = [];
  const api = new ComputeApi({
    instances: {
      find: async () => instance,
      transition: async () => undefined,
    } as unknown as InstanceRepository,
    images: {} as ImageRepository,
    volumes: {
      find: async () =>
        volume ? { id: VOLUME, projectId: 'p1', status: 'available', ...volume } : undefined,
      transition: async (_id: string, move: Move) => {
        moves.push(move.name);
        return {};
      },
    } as unknown as VolumeRepository,
    mappings: {
      forInstance: async () => mappings,
      reserve: async (input: { deviceName: string }) => {
        const m = { id: 'm1', volumeId: VOLUME, deviceName: input.deviceName } as BlockDeviceMapping;
        mappings.push(m);
        return m;
      },
      remove: async () => {
        moves.push('mapping removed');
      },
    } as unknown as BlockDeviceMappingRepository,
    scheduler: {} as SchedulerRpcApi,
    compute: {
      attach_volume: async (_ctx: RequestContext, host: string, args: { mountpoint: string }) => {
        if (castFails) throw new Error('broker away');
        casts.push(`${host} attach ${args.mountpoint}`);
      },
    } as unknown as ComputeRpcApi,
  });
  return { api, casts, moves };
}

describe('ComputeApi.attachVolume', () => {
  test('the next free device after the root and the ephemeral disk, cast to the instance host', async () => {
    const { api, casts } = fixture(server(), {});
    expect((await api.attachVolume(ctx, server().id, VOLUME, undefined)).deviceName).toBe('/dev/vdc');
    expect(casts).toEqual(['compute1 attach /dev/vdc']);
    const tiny = fixture(server({ ephemeralGb: 0 }), {});
    expect((await tiny.api.attachVolume(ctx, server().id, VOLUME, undefined)).deviceName).toBe('/dev/vdb');
  });

  test("a device that is not /dev/vd[b-z], or is the instance's own, is refused", async () => {
    for (const device of ['/dev/sda', '/dev/vda', 'vdc', '/dev/vdb']) {
      const { api, casts } = fixture(server(), {});
      await expect(api.attachVolume(ctx, server().id, VOLUME, device)).rejects.toThrow(InvalidInputError);
      expect(casts).toEqual([]);
    }
  });

  test('another project’s or a missing volume is not found; one not available is a 400', async () => {
    await expect(
      fixture(server(), { projectId: 'p2' }).api.attachVolume(ctx, server().id, VOLUME, undefined),
    ).rejects.toThrow(NotFoundError);
    await expect(
      fixture(server(), undefined).api.attachVolume(ctx, server().id, VOLUME, undefined),
    ).rejects.toThrow(NotFoundError);
    await expect(
      fixture(server(), { status: 'in-use' }).api.attachVolume(ctx, server().id, VOLUME, undefined),
    ).rejects.toThrow(InvalidStateError);
  });

  test('a server that is not ACTIVE and idle is a 409; another project’s is not found', async () => {
    const building = fixture(server({ vmState: 'building', taskState: 'spawning' }), {});
    await expect(building.api.attachVolume(ctx, server().id, VOLUME, undefined)).rejects.toThrow(
      ConflictError,
    );
    const foreign = fixture(server({ projectId: 'p2' }), {});
    await expect(foreign.api.attachVolume(ctx, server().id, VOLUME, undefined)).rejects.toThrow(
      NotFoundError,
    );
  });

  test('a cast that cannot be sent gives the volume back and forgets the mapping', async () => {
    const { api, moves } = fixture(server(), {}, true);
    await expect(api.attachVolume(ctx, server().id, VOLUME, undefined)).rejects.toThrow('broker away');
    expect(moves).toEqual(['mapping removed', 'unreserve']);
  });
});

describe('ComputeApi.create', () => {
  /** An api whose image repository holds one image; records whether an instance was made. */
  function creating(image: Partial<ImageRecord>) {
    const made: string[] = [];
    const api = new ComputeApi({
      instances: {
        create: async () => {
          made.push('instance');
          return server();
        },
      } as unknown as InstanceRepository,
      images: {
        findVisible: async () => ({
          id: 'img',
          status: 'active',
          size: 1024,
          minRam: 0,
          minDisk: 0,
          ...image,
        }),
      } as unknown as ImageRepository,
      volumes: {} as VolumeRepository,
      mappings: {} as BlockDeviceMappingRepository,
      scheduler: { run_instance: async () => undefined } as unknown as SchedulerRpcApi,
      compute: {} as ComputeRpcApi,
    });
    const create = (flavorRef: string) => api.create(ctx, { name: 's', flavorRef, imageRef: 'img' });
    return { create, made };
  }

  test("an image's min_ram above the flavor's memory is nova's 400, and no server is made", async () => {
    const { create, made } = creating({ minRam: 513 });
    await expect(create('1')).rejects.toThrow(
      new InvalidInputError("Flavor's memory is too small for requested image."),
    );
    expect(made).toEqual([]);
    await expect(creating({ minRam: 512 }).create('1')).resolves.toBeDefined();
  });

  test("a root of N GB must hold the image and its min_disk; a 0 GB root takes the image's size", async () => {
    const GiB = 2 ** 30;
    await expect(creating({ size: 10 * GiB + 1 }).create('2')).rejects.toThrow(
      new InvalidInputError(
        `Flavor's disk is too small for requested image. Flavor disk is ${10 * GiB} bytes, image is ${10 * GiB + 1} bytes.`,
      ),
    );
    await expect(creating({ minDisk: 11 }).create('2')).rejects.toThrow(
      new InvalidInputError(
        "Flavor's disk is smaller than the minimum size specified in image metadata. " +
          `Flavor disk is ${10 * GiB} bytes, minimum size is ${11 * GiB} bytes.`,
      ),
    );
    const { create, made } = creating({ size: 20 * GiB, minDisk: 30 });
    await expect(create('1')).resolves.toBeDefined();
    expect(made).toEqual(['instance']);
  });
});
