import { InvalidInputError } from '@basalt/errors';
import {
  assertAddress,
  assertInitiator,
  assertIqn,
  assertMountpoint,
  assertSafeName,
  assertSize,
  assertUuid,
} from './index';

/** What may reach a command line, tgtd's ACL or a guest's disk name: each check refuses the hostile forms. */
describe('names before they reach a command', () => {
  test.each([
    [
      assertSafeName,
      ['volume-00000001', 'volume-8f0e9c1a-0d3c-4a57-9d5e-4a1c2b3d4e5f', 'v.1+x'],
      ['', '-rf', '--yes', '../etc', 'a/b', 'a b', 'a\nb', 'a..b', '.hidden', 'x'.repeat(129), 'ä'],
    ],
    [
      assertIqn,
      ['iqn.2010-10.org.openstack:volume-00000001'],
      ['iqn.2010-10.org.openstack:volume 1', 'iqn.x', 'iqn.2010-10.org:a\nb', '-iqn.2010-10.org:a'],
    ],
    [
      assertAddress,
      ['127.0.0.1', '10.0.0.254', '::1', 'fe80::1'],
      [
        '',
        'ALL',
        '1.2.3',
        '999.1.1.1',
        '::::',
        'ffff',
        'fe80::1%eth0',
        'localhost',
        '127.0.0.1/8',
        '127.0.0.1 ',
        '-1',
      ],
    ],
    [
      assertInitiator,
      [
        'iqn.2026-11.test:client',
        'iqn.1993-08.org.debian:01:abcdef',
        'eui.0123456789abcdef',
        'naa.60a9800038303553',
      ],
      [
        '',
        'client',
        'iqn.2026-11.test:a b',
        'iqn.2026-11.test:a;b',
        `iqn.2026-11.test:${'x'.repeat(300)}`,
        'eui.xyz',
      ],
    ],
    [
      assertMountpoint,
      ['/dev/vdb', '/dev/sdc', '/dev/xvdd', '/dev/vdaa'],
      ['', 'vdb', '/dev/../etc/passwd', '/dev/vdb;reboot', '/dev/vd b', '/etc/shadow', '/dev/VDB'],
    ],
    [
      assertUuid,
      ['8f0e9c1a-0d3c-4a57-9d5e-4a1c2b3d4e5f'],
      ['', 'x', '8f0e9c1a-0d3c-4a57-9d5e-4a1c2b3d4e5f\n', "' OR 1=1"],
    ],
  ] as const)('%p lets the good through and refuses the rest', (check, good, bad) => {
    for (const value of good) expect((check as (v: string) => string)(value)).toBe(value);
    for (const value of bad) expect(() => (check as (v: string) => string)(value)).toThrow(InvalidInputError);
  });

  test('sizes are positive safe integers', () => {
    expect(assertSize(1)).toBe(1);
    for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => assertSize(size)).toThrow(InvalidInputError);
    }
  });

  test('a refusal quotes no more than the start of a hostile value', () => {
    expect(() => assertAddress(`1${'x'.repeat(10_000)}`)).toThrow(/^invalid initiator address "1x{63}"$/);
  });
});
