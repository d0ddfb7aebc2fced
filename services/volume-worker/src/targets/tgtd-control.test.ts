import { encodeRequest, TgtMode, TgtOp } from './tgtd-control';

// the bytes tgtadm 1.0.85 writes to tgtd's socket for the same requests (captured with strace on x86_64)
const TGTADM_BYTES = {
  newTarget:
    '010000000000000069736373690000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a3000000050000000000000000000000ffffffffffffffff000000000000000000000000000000000000000000000000' +
    Buffer.from('targetname=iqn.2010-10.org.openstack:vol-a\0').toString('hex'),
  newLun:
    '0200000000000000697363736900000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000008d0000000500000000000000000000000100000000000000000000000000000000000000000000000000000000000000' +
    Buffer.from('path=/tmp/tgtp/a.img\0').toString('hex'),
  deleteTargetForced:
    '01000000010000006973637369000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000078000000050000000000000000000000ffffffffffffffff000000000000000000000000000000000000000001000000',
};

describe('encodeRequest speaks exactly what tgtadm sends', () => {
  test('new target', () => {
    const bytes = encodeRequest({
      mode: TgtMode.target,
      op: TgtOp.new,
      tid: 5,
      params: { targetname: 'iqn.2010-10.org.openstack:vol-a' },
    });
    expect(bytes.toString('hex')).toBe(TGTADM_BYTES.newTarget);
  });

  test('new logical unit', () => {
    const bytes = encodeRequest({
      mode: TgtMode.logicalunit,
      op: TgtOp.new,
      tid: 5,
      lun: 1,
      params: { path: '/tmp/tgtp/a.img' },
    });
    expect(bytes.toString('hex')).toBe(TGTADM_BYTES.newLun);
  });

  test('forced target delete, no parameters', () => {
    const bytes = encodeRequest({ mode: TgtMode.target, op: TgtOp.delete, tid: 5, force: true });
    expect(bytes.toString('hex')).toBe(TGTADM_BYTES.deleteTargetForced);
  });
});

test.each([
  ['a comma in a value', { path: '/srv/a,b' }],
  ['a NUL in a value', { path: '/srv/a\0b' }],
  ['an equals sign in a key', { 'pa=th': '/srv/a' }],
])('refuses %s: it would smuggle in another parameter', (_what, params) => {
  expect(() => encodeRequest({ mode: TgtMode.logicalunit, op: TgtOp.new, tid: 1, lun: 1, params })).toThrow(
    /cannot carry/,
  );
});
