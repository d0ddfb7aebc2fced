import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, schema } from '@basalt/config';
import type { ConnectionInfo } from '@basalt/contracts';
import { ExecaRunner } from '@basalt/exec';
import { createComputeDrivers } from '../../services/compute-worker/src/compute-drivers';
import { hypervisorCapacity } from '../../services/compute-worker/src/hypervisor-capacity';
import { ImageCache } from '../../services/compute-worker/src/imagecache/image-cache';
import type { ImageSource } from '../../services/compute-worker/src/imagecache/image-source';
import type { InstancePaths } from '../../services/compute-worker/src/imagecache/instance-storage';
import { buildDomainSpec, type VolumeMapping } from '../../services/compute-worker/src/virt/domain-spec';
import { diskXml, domainXml } from '../../services/compute-worker/src/virt/domain-xml';
import { ImageCacheError } from '../../services/compute-worker/src/virt/errors';
import { secretUuid } from '../../services/compute-worker/src/virt/libvirt-secrets';
import { VirshSessions } from '../../services/compute-worker/src/virt/virsh-session';
import { TgtTarget } from '../../services/volume-worker/src/targets/tgt-target';
import { TgtdControl } from '../../services/volume-worker/src/targets/tgtd-control';
import { GuestConsole, GuestShell, testImage } from '../support/guest';
import { LIBVIRT_URI, LibvirtFixture } from '../support/libvirt';
import { tempDir } from '../support/processes';
import { quietLogger, waitFor } from '../support/rpc';
import { TgtdFixture } from '../support/tgtd';

const run = promisify(execFile);
const GIB = 1024 ** 3;
const VOLUME_BYTES = 64 * 1024 * 1024;
const MARKER_OFFSET = 1024 * 1024;

/**
 * The compute host's data path with the real thing: qemu-img and mkfs.ext3 lay out the instance,
 * libvirtd boots the test image under TCG from its BIOS, a real tgtd exports a volume with CHAP
 * that QEMU's own initiator attaches, and the guest itself reports what it sees. One guest for
 * the whole file; the tests run in order on it.
 */
describe('compute data path: image cache, libvirt guest, iSCSI volume', () => {
  const root = tempDir('basalt-cd');
  const instancesPath = join(root, 'instances');
  const runner = new ExecaRunner(quietLogger());
  const timings: Record<string, number> = {};
  let libvirt: LibvirtFixture;
  let tgtd: TgtdFixture;
  let imagePath: string;
  let image: ImageSource;
  let downloads = 0;
  let drivers: ReturnType<typeof createComputeDrivers>;
  let sessions: VirshSessions;
  let name: string;
  let paths: InstancePaths;
  let guestConsole: GuestConsole;
  let shell: GuestShell | undefined;

  const instance = { uuid: randomUUID(), memoryMb: 256, vcpus: 1, ephemeralGb: 1 };
  const volumeId = randomUUID();
  const volumeIqn = `iqn.2010-10.org.openstack:volume-${volumeId.slice(0, 8)}`;
  const chap = { user: 'cdUser01', password: `Pw${randomUUID().replace(/-/g, '')}` };
  let info: ConnectionInfo;
  let mapping: VolumeMapping;
  let volumeFile: string;
  let target: TgtTarget;
  const exportSpec = () => ({
    volumeId,
    name: `volume-${volumeId.slice(0, 8)}`,
    iqn: volumeIqn,
    tid: 1,
    backingPath: volumeFile,
    chapUser: chap.user,
    chapPassword: chap.password,
    initiators: ['127.0.0.1'],
  });

  const spec = (volumes: readonly VolumeMapping[]) =>
    buildDomainSpec(instance, volumes, {
      name,
      paths,
      virtType: 'qemu',
      serialShell: true,
      connector: drivers.connector,
    });
  const nexusInitiators = async () => {
    const { stdout } = await run('tgtadm', [
      '-C',
      String(tgtd.controlPort),
      '--lld',
      'iscsi',
      '--op',
      'show',
      '--mode',
      'target',
    ]);
    return [...stdout.matchAll(/Initiator: (\S+)/g)].map((m) => m[1]);
  };
  const since = (started: number) => Math.round(performance.now() - started);

  beforeAll(async () => {
    // libvirt runs QEMU as its own user: it must reach the instance folders
    await chmod(root, 0o755);
    [libvirt, tgtd, imagePath] = await Promise.all([
      LibvirtFixture.start(),
      TgtdFixture.start(),
      testImage(),
    ]);
    const config = loadConfig(schema, {
      env: {
        BASALT__DEFAULT__HOST: 'cd-compute1',
        BASALT__COMPUTE__VIRT_TYPE: 'qemu',
        BASALT__COMPUTE__LIBVIRT_URI: LIBVIRT_URI,
        BASALT__COMPUTE__INSTANCES_PATH: instancesPath,
        BASALT__COMPUTE__VOLUME_CONNECTOR: 'qemu',
        BASALT__COMPUTE__INITIATOR_IQN: `iqn.2010-10.org.basalt:${libvirt.prefix}`,
      },
    });
    // libvirt through long-lived virsh sessions, as the worker runs it
    sessions = new VirshSessions(quietLogger(), LIBVIRT_URI);
    drivers = createComputeDrivers(config, runner, sessions);
    name = `${libvirt.prefix}-0000002a`;
    paths = drivers.storage.paths(name);
    guestConsole = new GuestConsole(paths.consoleLog);
    const bytes = await readFile(imagePath);
    image = {
      id: randomUUID(),
      diskFormat: 'raw',
      size: bytes.length,
      checksum: createHash('md5').update(bytes).digest('hex'),
      download: async () => {
        downloads++;
        return createReadStream(imagePath);
      },
    };
    volumeFile = join(root, 'volume.img');
    await run('truncate', ['-s', String(VOLUME_BYTES), volumeFile]);
    await mkdir(join(root, 'tgt'));
    target = new TgtTarget(
      new TgtdControl(tgtd.controlPort),
      { volumesDir: join(root, 'tgt'), portal: { ip: '127.0.0.1', port: tgtd.port } },
      quietLogger(),
    );
    libvirt.trackSecret(`basalt-volume-${volumeId}`);
  }, 300_000);

  afterAll(async () => {
    shell?.close();
    sessions?.close();
    await libvirt?.cleanUp();
    await tgtd?.stop();
    await rm(root, { recursive: true, force: true });
    // figures for the report: they are not assertions
    console.log(`compute data path timings (ms): ${JSON.stringify(timings)}`);
  }, 240_000);

  test('two instances from one image fetch it once; disk and disk.local are qcow2 over _base, ephemeral0 is ext3', async () => {
    const other = `${libvirt.prefix}-0000002b`;
    const [mine] = await Promise.all([
      drivers.storage.createDisks({ name, image, rootGb: 1, ephemeralGb: 1 }),
      drivers.storage.createDisks({ name: other, image, rootGb: 1, ephemeralGb: 1 }),
    ]);
    expect(downloads).toBe(1);
    const sha1 = createHash('sha1').update(image.id).digest('hex');
    const base = join(instancesPath, '_base');

    const chain = async (path: string) => {
      const { stdout } = await run('qemu-img', ['info', '--backing-chain', '--output=json', '-U', path]);
      return (JSON.parse(stdout) as Array<Record<string, unknown>>).map((i) => ({
        filename: i.filename,
        format: i.format,
        'virtual-size': i['virtual-size'],
        'backing-filename': i['backing-filename'],
      }));
    };
    expect(await chain(mine.disk)).toEqual([
      {
        filename: mine.disk,
        format: 'qcow2',
        'virtual-size': GIB,
        'backing-filename': join(base, `${sha1}_1`),
      },
      {
        filename: join(base, `${sha1}_1`),
        format: 'raw',
        'virtual-size': GIB,
        'backing-filename': undefined,
      },
    ]);
    expect(await chain(mine.diskLocal)).toEqual([
      {
        filename: mine.diskLocal,
        format: 'qcow2',
        'virtual-size': GIB,
        'backing-filename': join(base, 'ephemeral_0_1_None'),
      },
      {
        filename: join(base, 'ephemeral_0_1_None'),
        format: 'raw',
        'virtual-size': GIB,
        'backing-filename': undefined,
      },
    ]);
    // the cached image is the image, byte for byte
    expect(
      createHash('sha1')
        .update(await readFile(join(base, sha1)))
        .digest('hex'),
    ).toBe(
      createHash('sha1')
        .update(await readFile(imagePath))
        .digest('hex'),
    );
    const { stdout: blkid } = await run('blkid', ['-o', 'export', join(base, 'ephemeral_0_1_None')]);
    expect(blkid).toContain('LABEL=ephemeral0');
    expect(blkid).toContain('TYPE=ext3');
    const { stdout: dumpe2fs } = await run('dumpe2fs', ['-h', join(base, 'ephemeral_0_1_None')]);
    expect(dumpe2fs).toMatch(/Filesystem volume name:\s+ephemeral0/);
    // sparse: the 1 GiB filesystem and the root copy take a small part of their size
    expect((await stat(join(base, 'ephemeral_0_1_None'))).blocks * 512).toBeLessThan(GIB / 4);
    expect((await stat(join(base, `${sha1}_1`))).blocks * 512).toBeLessThan(GIB / 4);

    await drivers.storage.removeInstance(other);
    expect(existsSync(join(instancesPath, other))).toBe(false);
    expect(existsSync(join(base, sha1))).toBe(true);
    expect(existsSync(mine.disk)).toBe(true);
  });

  test('a qcow2 image is cached as raw; a download with the wrong checksum leaves nothing in _base', async () => {
    const cache = new ImageCache(runner, join(root, 'other-instances'));
    const qcow2 = join(root, 'image.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', imagePath, qcow2]);
    const converted = await cache.image({
      id: 'qcow2-image',
      diskFormat: 'qcow2',
      download: async () => createReadStream(qcow2),
    });
    const { stdout } = await run('qemu-img', ['info', '--output=json', converted]);
    expect(JSON.parse(stdout)).toMatchObject({ format: 'raw', 'virtual-size': (await stat(imagePath)).size });

    const corrupt = cache.image({
      id: 'bad-image',
      diskFormat: 'raw',
      checksum: '0'.repeat(32),
      download: async () => createReadStream(imagePath),
    });
    await expect(corrupt).rejects.toThrow(ImageCacheError);
    await expect(corrupt).rejects.toThrow('checksum');
    const lying = cache.image({
      id: 'lying-image',
      diskFormat: 'raw',
      download: async () => createReadStream(qcow2),
    });
    await expect(lying).rejects.toThrow('says disk_format raw but is qcow2');
    const { stdout: left } = await run('ls', ['-A', cache.dir]);
    expect(left.split('\n').filter(Boolean)).toEqual([
      createHash('sha1').update('qcow2-image').digest('hex'),
    ]);

    // two caches on one directory, as two worker processes would be: the lock file lets one fetch
    let fetched = 0;
    const shared: ImageSource = {
      id: 'shared-image',
      diskFormat: 'raw',
      download: async () => {
        fetched++;
        return createReadStream(imagePath);
      },
    };
    const twin = new ImageCache(runner, join(root, 'other-instances'));
    const [a, b] = await Promise.all([cache.image(shared), twin.image(shared)]);
    expect(a).toBe(b);
    expect(fetched).toBe(1);
  });

  test('the domain from the spec boots the image through SeaBIOS and SYSLINUX under TCG and lists its disks', async () => {
    const xml = domainXml(spec([]));
    await drivers.storage.writeLibvirtXml(name, xml);
    const started = performance.now();
    await drivers.hypervisor.spawn(name, xml);
    expect(await drivers.hypervisor.state(name)).toBe('running');
    const booted = await guestConsole.waitFor(/BOOTED cmdline=(.*)/, 'the guest to boot', 180_000);
    // SYSLINUX adds BOOT_IMAGE: the kernel came from the disk, not from -kernel
    expect(booted[1]).toContain('BOOT_IMAGE=vmlinuz');
    await guestConsole.waitFor(/BLOCKDEVS t=\S+ vda vdb\b/, 'the guest to list vda and vdb');
    timings.bootToConsole = since(started);
    const text = await guestConsole.text();
    expect(text).toContain('SYSLINUX');
    expect(text).toMatch(/BLOCKDEV vda size=1073741824 serial=- /);
    expect(text).toMatch(/BLOCKDEV vdb size=1073741824 serial=- label=ephemeral0/);
    expect(await drivers.hypervisor.blockDevices(name)).toEqual([
      { type: 'file', device: 'disk', target: 'vda', source: paths.disk },
      { type: 'file', device: 'disk', target: 'vdb', source: paths.diskLocal },
    ]);
    expect(await readFile(paths.libvirtXml, 'utf8')).toBe(xml);
    shell = await GuestShell.connect(paths.shellSocket);
    expect(await shell.run('cat /sys/block/vda/size')).toBe(`${GIB / 512}\n`);
  }, 240_000);

  test('a CHAP-protected tgt volume hot-plugs through the qemu connector; the guest sees it with its serial and writes to it', async () => {
    await target.createExport({ ...exportSpec(), initiators: [] });
    // what the volume host answers initialize_connection with
    info = await target.initializeConnection(exportSpec(), []);
    mapping = { volumeId, deviceName: '/dev/vdc', connectionInfo: info };
    await guestConsole.mark();
    const started = performance.now();
    const connection = await drivers.connector.connect(info);
    const disk = { source: connection.source, target: 'vdc', serial: volumeId };
    await drivers.hypervisor.attachDisk(name, diskXml(disk));
    timings.attachCommand = since(started);
    const seen = await guestConsole.waitFor(
      new RegExp(`BLOCKDEV (vd[a-z]) size=${VOLUME_BYTES} serial=${volumeId.slice(0, 20)} `),
      'the guest to see the volume',
    );
    timings.attachToGuest = since(started);
    const dev = seen[1];

    expect(await libvirt.secrets(`basalt-volume-${volumeId}`)).toHaveLength(1);
    // QEMU's initiator presents this host's IQN, so tgt's ACL could name it
    expect(await nexusInitiators()).toEqual([`iqn.2010-10.org.basalt:${libvirt.prefix}`]);
    // the password is in the libvirt secret only: not on any command line, not in the domain XML
    const { stdout: ps } = await run('ps', ['-eo', 'args']);
    expect(ps).not.toContain(chap.password);
    const { stdout: dumpxml } = await run('virsh', ['-c', LIBVIRT_URI, 'dumpxml', name]);
    expect(dumpxml).not.toContain(chap.password);
    expect((await drivers.hypervisor.blockDevices(name)).map((d) => d.target)).toEqual(['vda', 'vdb', 'vdc']);

    await shell?.run(
      `echo MARKER-${volumeId} | dd of=/dev/${dev} bs=512 seek=${MARKER_OFFSET / 512} conv=sync,fsync`,
    );
    const handle = await open(volumeFile, 'r');
    const buffer = Buffer.alloc(64);
    await handle.read(buffer, 0, 64, MARKER_OFFSET);
    await handle.close();
    expect(buffer.toString('latin1')).toContain(`MARKER-${volumeId}`);
  }, 60_000);

  test('a guest that ignores ACPI fails the soft reboot; the hard reboot rebuilds it from the rows and keeps the volume', async () => {
    await shell?.run('touch /ignore-power-button');
    await guestConsole.mark();
    await expect(drivers.hypervisor.softReboot(name, 1500)).resolves.toBe(false);
    await guestConsole.waitFor(
      /POWER BUTTON: ignored/,
      'the guest to see the power button and ignore it',
      30_000,
    );
    shell?.close();
    await guestConsole.mark();
    const started = performance.now();
    await drivers.hypervisor.hardReboot(name, domainXml(spec([mapping])));
    await guestConsole.waitFor(
      /BLOCKDEVS t=\S+ vda vdb vdc\b/,
      'the rebooted guest to list its three disks',
      90_000,
    );
    timings.hardRebootToConsole = since(started);
    shell = await GuestShell.connect(paths.shellSocket);
    const dev = await shell.run(
      `for d in /sys/block/vd*; do [ "$(cat $d/serial)" = "${volumeId.slice(0, 20)}" ] && echo \${d##*/}; done`,
    );
    const marker = await shell.run(
      `dd if=/dev/${dev.trim()} bs=512 skip=${MARKER_OFFSET / 512} count=1 2>/dev/null | tr -cd 'A-Za-z0-9-'`,
    );
    expect(marker).toBe(`MARKER-${volumeId}`);
  }, 240_000);

  test('detach completes in the guest, in the definition and at the target; the secret goes with the connection', async () => {
    await guestConsole.mark();
    const disk = { source: drivers.connector.describe(info).source, target: 'vdc', serial: volumeId };
    const started = performance.now();
    await drivers.hypervisor.detachDisk(name, 'vdc', diskXml(disk), 20_000);
    timings.detach = since(started);
    expect((await drivers.hypervisor.blockDevices(name)).map((d) => d.target)).toEqual(['vda', 'vdb']);
    const { stdout: inactive } = await run('virsh', ['-c', LIBVIRT_URI, 'domblklist', name, '--inactive']);
    expect(inactive).not.toContain(volumeIqn);
    await guestConsole.waitFor(/BLOCKDEVS t=\S+ vda vdb\r?\n/, 'the guest to lose the volume');
    await waitFor(async () => (await nexusInitiators()).length === 0, 'the I_T nexus to close');
    await drivers.connector.disconnect(info);
    expect(await libvirt.secrets(`basalt-volume-${volumeId}`)).toEqual([]);
    await target.terminateConnection({ ...exportSpec(), initiators: [] }, ['127.0.0.1']);
    await target.removeExport(exportSpec());
  }, 60_000);

  test('a CHAP secret is defined under the UUID of its usage; one left under another UUID is reused, then removed', async () => {
    const usage = `basalt-volume-${randomUUID()}`;
    libvirt.trackSecret(usage);
    const uuid = await drivers.secrets.ensure(usage, 'Pw-one');
    expect(uuid).toBe(secretUuid(usage));
    await expect(drivers.secrets.ensure(usage, 'Pw-two')).resolves.toBe(uuid);
    expect(await libvirt.secrets(usage)).toEqual([uuid]);
    await drivers.secrets.remove(usage);
    await drivers.secrets.remove(usage);
    expect(await libvirt.secrets(usage)).toEqual([]);

    const xml = join(root, 'secret.xml');
    await writeFile(
      xml,
      `<secret ephemeral='no' private='yes'><usage type='iscsi'><target>${usage}</target></usage></secret>`,
    );
    const { stdout } = await run('virsh', ['-c', LIBVIRT_URI, 'secret-define', xml]);
    const chosen = /Secret (\S+) created/.exec(stdout)?.[1];
    expect(chosen).not.toBe(uuid);
    await expect(drivers.secrets.ensure(usage, 'Pw-three')).resolves.toBe(chosen);
    expect(await libvirt.secrets(usage)).toEqual([chosen]);
    await drivers.secrets.remove(usage);
    expect(await libvirt.secrets(usage)).toEqual([]);
  }, 60_000);

  test('destroy undefines the domain; the instance folder goes, _base stays; the capacity report adds up', async () => {
    shell?.close();
    shell = undefined;
    await drivers.hypervisor.destroy(name);
    await drivers.hypervisor.destroy(name);
    expect(await drivers.hypervisor.state(name)).toBeUndefined();
    expect(await libvirt.domains()).toEqual([]);
    await drivers.storage.removeInstance(name);
    expect(existsSync(paths.dir)).toBe(false);
    expect(existsSync(join(instancesPath, '_base', 'ephemeral_0_1_None'))).toBe(true);

    const capacity = await hypervisorCapacity(instancesPath);
    const { stdout: df } = await run('df', ['-B1', '--output=size', instancesPath]);
    expect(capacity.vcpus).toBe(cpus().length);
    expect(capacity.localGb).toBe(Math.floor(Number(df.split('\n')[1]) / GIB));
    expect(capacity.freeMemoryMb).toBeGreaterThan(0);
    expect(capacity.freeMemoryMb).toBeLessThanOrEqual(capacity.memoryMb);
  });
});
