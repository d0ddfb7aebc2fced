import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSpans, SpanStatusCode } from '@basalt/trace';
import { encodeRequest, TgtdControl, TgtMode, TgtOp } from './tgtd-control';

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

describe('probe', () => {
  /** A stand-in tgtd on a unix socket that answers every request with `answer(mode, op, params)`. */
  async function fakeTgtd(answer: (mode: number, op: number, params: string) => [number, string]) {
    const dir = mkdtempSync(join(tmpdir(), 'basalt-fake-tgtd-'));
    const path = join(dir, 'socket');
    const server = createServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const request = Buffer.concat(chunks);
        if (request.length < 120 || request.length < request.readUInt32LE(72)) return;
        const [code, text] = answer(
          request.readUInt32LE(0),
          request.readUInt32LE(4),
          request.subarray(120).toString().replace(/\0$/, ''),
        );
        const head = Buffer.alloc(8);
        head.writeUInt32LE(code, 0);
        head.writeUInt32LE(8 + Buffer.byteLength(text), 4);
        socket.end(Buffer.concat([head, Buffer.from(text)]));
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return {
      control: new TgtdControl(9, { socketPath: path }),
      close: () => {
        server.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const SYSTEM = 'System:\n    State: ready\nLLDs:\n    iscsi: ready\n';

  test('accepts a tgtd that lists the probe account it was asked to create, then deletes it', async () => {
    const accounts = new Set<string>();
    const tgtd = await fakeTgtd((mode, op, params) => {
      const user = /user=([^,]+)/.exec(params)?.[1] ?? '';
      if (mode === TgtMode.system) return [0, SYSTEM];
      if (op === TgtOp.new) accounts.add(user);
      if (op === TgtOp.delete) accounts.delete(user);
      return [
        0,
        op === TgtOp.show ? `Account list:\n${[...accounts].map((a) => `    ${a}\n`).join('')}` : '',
      ];
    });
    try {
      await expect(tgtd.control.probe()).resolves.toBeUndefined();
      expect(accounts.size).toBe(0);
    } finally {
      tgtd.close();
    }
  });

  test('refuses a tgtd that reads the parameters shifted (a header of another size)', async () => {
    const tgtd = await fakeTgtd((mode, op, params) => {
      if (mode === TgtMode.system) return [0, SYSTEM];
      // what a tgtd with a 4-byte-longer struct makes of "user=..."
      return [0, op === TgtOp.show ? `Account list:\n    ${params.slice(9)}\n` : ''];
    });
    try {
      await expect(tgtd.control.probe()).rejects.toThrow(/does not speak tgtadm's protocol/);
    } finally {
      tgtd.close();
    }
  });

  test('each request is a span naming the operation and the answer, never the parameter values', async () => {
    const recorder = recordSpans();
    const tgtd = await fakeTgtd((_mode, op) => (op === TgtOp.delete ? [15, ''] : [0, '']));
    try {
      await tgtd.control.request({
        mode: TgtMode.account,
        op: TgtOp.new,
        params: { user: 'u1', password: 'Sekrit123' },
      });
      await tgtd.control.request({ mode: TgtMode.account, op: TgtOp.delete, params: { user: 'u1' } });
      const [created, deleted] = recorder.spans();
      expect(created?.name).toBe('tgtd new account');
      expect(created?.attributes).toMatchObject({ 'tgtd.code': 0, 'tgtd.params': ['user', 'password'] });
      expect(created?.status.code).toBe(SpanStatusCode.UNSET);
      expect(deleted?.name).toBe('tgtd delete account');
      expect(deleted?.status).toEqual({ code: SpanStatusCode.ERROR, message: "can't find the account" });
      expect(JSON.stringify(recorder.spans().map((s) => s.attributes))).not.toContain('Sekrit123');
    } finally {
      tgtd.close();
      await recorder.stop();
    }
  });

  test('refuses something that is not tgtd with the iscsi driver', async () => {
    const tgtd = await fakeTgtd(() => [17, '']);
    try {
      await expect(tgtd.control.probe()).rejects.toThrow(/"show system" answered 17/);
    } finally {
      tgtd.close();
    }
  });
});
