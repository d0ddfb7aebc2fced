import type { ConnectionInfo } from '@basalt/contracts';
import { InvalidInputError } from '@basalt/errors';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { QemuConnector } from '../connectors/qemu-connector';
import type { InstancePaths } from '../imagecache/instance-storage';
import { buildDomainSpec, type DomainSpecContext, diskTarget } from './domain-spec';
import { diskXml, domainXml } from './domain-xml';
import type { SecretStore } from './hypervisor';

const paths: InstancePaths = {
  dir: '/var/lib/basalt/instances/instance-0000002a',
  disk: '/var/lib/basalt/instances/instance-0000002a/disk',
  diskLocal: '/var/lib/basalt/instances/instance-0000002a/disk.local',
  libvirtXml: '/var/lib/basalt/instances/instance-0000002a/libvirt.xml',
  consoleLog: '/var/lib/basalt/instances/instance-0000002a/console.log',
  shellSocket: '/var/lib/basalt/instances/instance-0000002a/shell.sock',
};
const unusedSecrets: SecretStore = {
  define: () => Promise.reject(new Error('not in a pure function')),
  ensure: () => Promise.reject(new Error('not in a pure function')),
  remove: () => Promise.reject(new Error('not in a pure function')),
  lookup: () => Promise.reject(new Error('not in a pure function')),
};
const connector = new QemuConnector(unusedSecrets, {
  ip: '127.0.0.1',
  initiator: 'iqn.2010-10.org.basalt:compute1',
  host: 'compute1',
});
const context: DomainSpecContext = {
  name: 'instance-0000002a',
  paths,
  virtType: 'qemu',
  serialShell: false,
  connector,
};
const small = { uuid: '5f0c3a62-2c5e-4c39-8a3e-2d6c0f1b9e11', memoryMb: 2048, vcpus: 1, ephemeralGb: 20 };

function connection(volumeId: string, lun = 1): ConnectionInfo {
  return {
    driver_volume_type: 'iscsi',
    data: {
      target_portal: '127.0.0.1:3260',
      target_iqn: `iqn.2010-10.org.openstack:volume-${volumeId.slice(0, 8)}`,
      target_lun: lun,
      target_discovered: false,
      volume_id: volumeId,
      auth_method: 'CHAP',
      auth_username: 'user1',
      auth_password: 'pw-not-in-xml',
    },
  };
}

/** The spec of the small instance with one volume attached at `deviceName`. */
function withVolume(volumeId: string, deviceName: string) {
  return buildDomainSpec(small, [{ volumeId, deviceName, connectionInfo: connection(volumeId) }], context);
}

function parse(xml: string): Element {
  const doc = new DOMParser({
    onError: (level, message) => {
      throw new Error(`${level}: ${message}`);
    },
  }).parseFromString(xml, 'text/xml');
  if (doc.documentElement === null) throw new Error('no document element');
  return doc.documentElement;
}

const children = (parent: Element, tag: string): Element[] => Array.from(parent.getElementsByTagName(tag));
const one = (parent: Element, tag: string): Element => {
  const found = children(parent, tag);
  if (found.length !== 1) throw new Error(`${found.length} <${tag}> elements`);
  return found[0] as Element;
};

describe('domain XML from the database', () => {
  test('an m1.small instance with one volume: root and ephemeral qcow2 files, then the volume as a network disk', () => {
    const volumeId = 'c0ffee00-1111-2222-3333-444455556666';
    const spec = withVolume(volumeId, '/dev/vdc');
    const domain = parse(domainXml(spec));

    expect(domain.getAttribute('type')).toBe('qemu');
    expect(one(domain, 'name').textContent).toBe('instance-0000002a');
    expect(one(domain, 'uuid').textContent).toBe(small.uuid);
    expect(one(domain, 'memory').getAttribute('unit')).toBe('MiB');
    expect(one(domain, 'memory').textContent).toBe('2048');
    expect(one(domain, 'vcpu').textContent).toBe('1');
    expect(one(domain, 'boot').getAttribute('dev')).toBe('hd');
    expect(children(domain, 'kernel')).toHaveLength(0);

    const disks = children(domain, 'disk');
    expect(disks.map((d) => [d.getAttribute('type'), one(d, 'target').getAttribute('dev')])).toEqual([
      ['file', 'vda'],
      ['file', 'vdb'],
      ['network', 'vdc'],
    ]);
    const [root, local, volume] = disks as [Element, Element, Element];
    expect(one(root, 'driver').getAttribute('type')).toBe('qcow2');
    expect(one(root, 'source').getAttribute('file')).toBe(paths.disk);
    expect(one(local, 'source').getAttribute('file')).toBe(paths.diskLocal);
    expect(children(root, 'serial')).toHaveLength(0);

    const source = one(volume, 'source');
    expect(source.getAttribute('protocol')).toBe('iscsi');
    expect(source.getAttribute('name')).toBe('iqn.2010-10.org.openstack:volume-c0ffee00/1');
    expect(one(source, 'host').getAttribute('name')).toBe('127.0.0.1');
    expect(one(source, 'host').getAttribute('port')).toBe('3260');
    expect(one(one(source, 'initiator'), 'iqn').getAttribute('name')).toBe('iqn.2010-10.org.basalt:compute1');
    expect(one(volume, 'driver').getAttribute('cache')).toBe('none');
    expect(one(volume, 'auth').getAttribute('username')).toBe('user1');
    expect(one(volume, 'secret').getAttribute('type')).toBe('iscsi');
    expect(one(volume, 'secret').getAttribute('usage')).toBe(`basalt-volume-${volumeId}`);
    expect(one(volume, 'target').getAttribute('bus')).toBe('virtio');
    expect(one(volume, 'serial').textContent).toBe(volumeId);
    expect(domainXml(spec)).not.toContain('pw-not-in-xml');

    const serials = children(domain, 'serial').filter((s) => s.parentNode?.nodeName === 'devices');
    expect(serials).toHaveLength(1);
    expect(serials[0]?.getAttribute('type')).toBe('file');
    expect(one(serials[0] as Element, 'source').getAttribute('path')).toBe(paths.consoleLog);
    expect(one(serials[0] as Element, 'source').getAttribute('append')).toBe('on');
  });

  test('m1.tiny has no disk.local; the shell serial port only when asked for; kvm in production', () => {
    const tiny = buildDomainSpec({ ...small, ephemeralGb: 0, memoryMb: 512 }, [], {
      ...context,
      virtType: 'kvm',
      serialShell: true,
    });
    const domain = parse(domainXml(tiny));
    expect(domain.getAttribute('type')).toBe('kvm');
    expect(children(domain, 'disk').map((d) => one(d, 'target').getAttribute('dev'))).toEqual(['vda']);
    const serials = children(domain, 'serial');
    expect(serials.map((s) => [s.getAttribute('type'), one(s, 'target').getAttribute('port')])).toEqual([
      ['file', '0'],
      ['unix', '1'],
    ]);
    expect(one(serials[1] as Element, 'source').getAttribute('mode')).toBe('bind');
    expect(one(serials[1] as Element, 'source').getAttribute('path')).toBe(paths.shellSocket);
  });

  test('the same rows always give the same XML (a hard reboot rebuilds the guest it had)', () => {
    const volumeId = 'c0ffee00-1111-2222-3333-444455556666';
    const rows = [{ volumeId, deviceName: '/dev/vdc', connectionInfo: connection(volumeId) }];
    expect(domainXml(buildDomainSpec(small, rows, context))).toBe(
      domainXml(buildDomainSpec(small, rows, context)),
    );
  });

  test('the disk XML given to attach-device is the same element the domain holds', () => {
    const volumeId = 'abcdef00-1111-2222-3333-444455556666';
    const spec = withVolume(volumeId, 'vdd');
    const volume = spec.disks[2];
    if (volume === undefined) throw new Error('no volume disk');
    expect(domainXml(spec)).toContain(
      diskXml(volume)
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
    );
    const disk = parse(diskXml(volume));
    expect(disk.getAttribute('type')).toBe('network');
    expect(one(disk, 'target').getAttribute('dev')).toBe('vdd');
  });

  test('a block source (iscsiadm) is a raw block disk', () => {
    const disk = parse(
      diskXml({
        source: {
          type: 'block',
          path: '/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-iqn.2010-10.org.openstack:volume-1-lun-1',
        },
        target: 'vdc',
        serial: 'v1',
      }),
    );
    expect(disk.getAttribute('type')).toBe('block');
    expect(one(disk, 'source').getAttribute('dev')).toMatch(/^\/dev\/disk\/by-path\//);
    expect(one(disk, 'driver').getAttribute('type')).toBe('raw');
  });

  test('markup in values is escaped, so a name cannot add elements', () => {
    const spec = buildDomainSpec(small, [], { ...context, paths: { ...paths, disk: "/x/a'><evil/>" } });
    const domain = parse(domainXml(spec));
    expect(children(domain, 'evil')).toHaveLength(0);
    expect(one(children(domain, 'disk')[0] as Element, 'source').getAttribute('file')).toBe("/x/a'><evil/>");
  });

  test('bad device names and two disks on one target are refused', () => {
    expect(() => diskTarget('/dev/sda')).toThrow(InvalidInputError);
    expect(() => diskTarget('vdb;reboot')).toThrow(InvalidInputError);
    expect(diskTarget('/dev/vdc')).toBe('vdc');
    const volumeId = 'c0ffee00-1111-2222-3333-444455556666';
    expect(() =>
      buildDomainSpec(
        small,
        [{ volumeId, deviceName: '/dev/vdb', connectionInfo: connection(volumeId) }],
        context,
      ),
    ).toThrow('Two disks of instance-0000002a want vdb');
  });
});
