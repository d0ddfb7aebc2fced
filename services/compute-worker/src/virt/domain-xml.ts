import { InvalidInputError } from '@basalt/errors';
import type { DiskSource, DomainSpec, GuestDisk } from './domain-spec';

/** The namespace of the metadata element that marks a domain as one Basalt defined. */
export const DOMAIN_MARKER_NS = 'https://basalt.invalid/xmlns/instance/1.0';

/** libvirt's domain XML for a spec: a pure function, so one spec always gives one guest. */
export function domainXml(spec: DomainSpec): string {
  // appended to, not truncated, when QEMU starts again: a guest's console history outlives its
  // power-offs (a soft reboot is one)
  const serials = [
    `    <serial type='file'>\n      <source path='${attr(spec.consoleLog)}' append='on'/>\n      <target port='0'/>\n    </serial>`,
  ];
  if (spec.shellSocket !== undefined) {
    serials.push(
      `    <serial type='unix'>\n      <source mode='bind' path='${attr(spec.shellSocket)}'/>\n      <target port='1'/>\n    </serial>`,
    );
  }
  return [
    `<domain type='${spec.virtType}'>`,
    `  <name>${text(spec.name)}</name>`,
    `  <uuid>${text(spec.uuid)}</uuid>`,
    '  <metadata>',
    `    <basalt:instance xmlns:basalt='${DOMAIN_MARKER_NS}'/>`,
    '  </metadata>',
    `  <memory unit='MiB'>${int(spec.memoryMb)}</memory>`,
    `  <vcpu>${int(spec.vcpus)}</vcpu>`,
    '  <os>',
    "    <type arch='x86_64' machine='pc'>hvm</type>",
    "    <boot dev='hd'/>",
    '  </os>',
    '  <features>',
    '    <acpi/>',
    '    <apic/>',
    '  </features>',
    "  <clock offset='utc'/>",
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    ...spec.disks.map((disk) => indent(diskXml(disk), '    ')),
    ...serials,
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}

/** One `<disk>` element: part of the domain XML, and what `virsh attach-device` is given. */
export function diskXml(disk: GuestDisk): string {
  const lines = [`<disk type='${disk.source.type}' device='disk'>`, ...sourceLines(disk.source)];
  lines.push(`  <target dev='${attr(disk.target)}' bus='virtio'/>`);
  if (disk.serial !== undefined) lines.push(`  <serial>${text(disk.serial)}</serial>`);
  lines.push('</disk>');
  return lines.join('\n');
}

function sourceLines(source: DiskSource): string[] {
  switch (source.type) {
    case 'file':
      return [`  <driver name='qemu' type='${source.format}'/>`, `  <source file='${attr(source.path)}'/>`];
    case 'block':
      return [
        "  <driver name='qemu' type='raw' cache='none' io='native'/>",
        `  <source dev='${attr(source.path)}'/>`,
      ];
    case 'network': {
      const lines = [
        "  <driver name='qemu' type='raw' cache='none'/>",
        `  <source protocol='iscsi' name='${attr(source.name)}'>`,
        `    <host name='${attr(source.host.name)}' port='${int(source.host.port)}'/>`,
      ];
      if (source.initiatorIqn !== undefined) {
        lines.push('    <initiator>', `      <iqn name='${attr(source.initiatorIqn)}'/>`, '    </initiator>');
      }
      lines.push('  </source>');
      if (source.auth !== undefined) {
        lines.push(
          `  <auth username='${attr(source.auth.username)}'>`,
          `    <secret type='iscsi' usage='${attr(source.auth.secretUsage)}'/>`,
          '  </auth>',
        );
      }
      return lines;
    }
  }
}

function indent(block: string, by: string): string {
  return block
    .split('\n')
    .map((line) => by + line)
    .join('\n');
}

function text(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attr(value: string): string {
  return text(value).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function int(value: number): string {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new InvalidInputError(`Not a positive integer: ${value}`);
  return String(value);
}
