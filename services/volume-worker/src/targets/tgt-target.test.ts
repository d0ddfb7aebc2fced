import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@basalt/log';
import type { ExportSpec } from './iscsi-target';
import { TgtTarget } from './tgt-target';
import { type TgtdAnswer, TgtdControl, type TgtdRequest, TgtErrno, TgtMode, TgtOp } from './tgtd-control';

const log = createLogger({ name: 'test', level: 'silent' });
const portal = { ip: '192.0.2.10', port: 3260 };
const spec = (over: Partial<ExportSpec> = {}): ExportSpec => ({
  volumeId: 'c2ab0e0f-3f5c-4c4b-9d47-2f0a8f3a2b10',
  name: 'volume-0000000a',
  iqn: 'iqn.2010-10.org.openstack:volume-0000000a',
  tid: 7,
  backingPath: '/srv/volumes/volume-0000000a',
  chapUser: 'UserName1234',
  chapPassword: 'Secret1234567890',
  initiators: [],
  ...over,
});

/** Records every request and answers each from a script (success by default). */
class ScriptedTgtd extends TgtdControl {
  readonly requests: TgtdRequest[] = [];
  answer: (request: TgtdRequest) => TgtdAnswer = () => ({ code: 0, text: '' });

  constructor() {
    super(3);
  }

  override async request(request: TgtdRequest): Promise<TgtdAnswer> {
    this.requests.push(request);
    return this.answer(request);
  }

  /** `op mode` of each request, as tgtadm would name them. */
  get ops(): string[] {
    const name = (table: Record<string, number>, value: number) =>
      Object.keys(table).find((k) => table[k] === value);
    return this.requests.map((r) => `${name(TgtOp, r.op)} ${name(TgtMode, r.mode)}`);
  }
}

describe('TgtTarget', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const setup = () => {
    const tgtd = new ScriptedTgtd();
    const dir = mkdtempSync(join(tmpdir(), 'basalt-tgt-'));
    dirs.push(dir);
    return { tgtd, dir, target: new TgtTarget(tgtd, { volumesDir: dir, portal }, log) };
  };

  test('createExport: target and LUN 1; CHAP and ACL once an initiator is let in', async () => {
    const { tgtd, dir, target } = setup();
    await target.createExport(spec());
    expect(tgtd.requests).toEqual([
      {
        mode: TgtMode.target,
        op: TgtOp.new,
        tid: 7,
        params: { targetname: 'iqn.2010-10.org.openstack:volume-0000000a' },
      },
      {
        mode: TgtMode.logicalunit,
        op: TgtOp.new,
        tid: 7,
        lun: 1,
        params: { path: '/srv/volumes/volume-0000000a' },
      },
    ]);
    tgtd.requests.length = 0;
    await target.setInitiators(spec({ initiators: ['10.0.0.5'] }), []);
    expect(tgtd.ops).toEqual(['new account', 'bind account', 'bind target']);
    expect(tgtd.requests[0]?.params).toEqual({ user: 'UserName1234', password: 'Secret1234567890' });
    expect(tgtd.requests[2]?.params).toEqual({ 'initiator-address': '10.0.0.5' });
    const file = join(dir, 'volume-0000000a');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(
      [
        '<target iqn.2010-10.org.openstack:volume-0000000a>',
        '    backing-store /srv/volumes/volume-0000000a',
        '    driver iscsi',
        '    incominguser UserName1234 Secret1234567890',
        '    initiator-address 10.0.0.5',
        '    write-cache on',
        '</target>',
        '',
      ].join('\n'),
    );
  });

  test('an export restored with its initiators gets its CHAP account and ACL at once', async () => {
    const { tgtd, target } = setup();
    await target.createExport(spec({ initiators: ['10.0.0.5'] }));
    expect(tgtd.ops).toEqual(['new target', 'new logicalunit', 'new account', 'bind account', 'bind target']);
  });

  test('"already exists" answers make createExport idempotent; other answers are raised', async () => {
    const { tgtd, target } = setup();
    tgtd.answer = (r) => ({
      code: r.mode === TgtMode.target ? TgtErrno.targetExists : TgtErrno.lunExists,
      text: '',
    });
    await expect(target.createExport(spec())).resolves.toBeUndefined();
    tgtd.answer = () => ({ code: TgtErrno.invalidRequest, text: '' });
    const refused = target.createExport(spec());
    await expect(refused).rejects.toThrow('tgtd could not create target 7: invalid request');
    await expect(refused).rejects.toMatchObject({ retryable: false });
    tgtd.answer = () => ({ code: TgtErrno.noTarget, text: '' });
    await expect(target.createExport(spec())).rejects.toMatchObject({ retryable: true });
  });

  test('setInitiators binds the new addresses and unbinds the gone ones', async () => {
    const { tgtd, target } = setup();
    await target.setInitiators(spec({ initiators: ['10.0.0.2', '10.0.0.3'] }), ['10.0.0.1', '10.0.0.2']);
    expect(tgtd.ops).toEqual(['new account', 'bind account', 'bind target', 'unbind target']);
    expect(tgtd.requests.slice(2).map((r) => r.params?.['initiator-address'])).toEqual([
      '10.0.0.3',
      '10.0.0.1',
    ]);
  });

  test('removeExport deletes the target (forced), the account and the config file', async () => {
    const { tgtd, target } = setup();
    await target.createExport(spec());
    tgtd.requests.length = 0;
    // already gone is fine: a redelivered delete must succeed
    tgtd.answer = (r) => ({
      code: r.mode === TgtMode.target ? TgtErrno.noTarget : TgtErrno.noAccount,
      text: '',
    });
    await target.removeExport({ ...spec(), chapUser: 'UserName1234' });
    expect(tgtd.requests).toEqual([
      { mode: TgtMode.target, op: TgtOp.delete, tid: 7, force: true },
      { mode: TgtMode.account, op: TgtOp.delete, params: { user: 'UserName1234' } },
    ]);
    expect(() => statSync(target.configFile('volume-0000000a'))).toThrow();
  });

  describe('removeExport without the CHAP user (a stored secret that no longer opens)', () => {
    const { chapUser: _user, chapPassword: _password, initiators: _initiators, ...ref } = spec();
    const listing = (text: string) => (r: TgtdRequest) =>
      r.op === TgtOp.show ? { code: 0, text } : { code: 0, text: '' };
    /** The config of volume-0000000a as written for `user`, and tgtd's answers reset. */
    const withConfig = async (user: string) => {
      const f = setup();
      await f.target.createExport(spec({ chapUser: user, initiators: ['10.0.0.5'] }));
      f.tgtd.requests.length = 0;
      return f;
    };
    const deleted = (tgtd: ScriptedTgtd) =>
      tgtd.requests.filter((r) => r.op === TgtOp.delete).map((r) => r.params?.user ?? `target ${r.tid}`);

    test('the account tgtd binds to this target number with this IQN is removed, not an outgoing one', async () => {
      const { tgtd, target } = await withConfig('ConfigUser01');
      tgtd.answer = listing(
        [
          'Target 6: iqn.2010-10.org.openstack:volume-00000009',
          '    Account information:',
          '        OtherUser123',
          'Target 7: iqn.2010-10.org.openstack:volume-0000000a',
          '    Account information:',
          '        BoundUser123',
          '        OutUser12345 (outgoing)',
          '',
        ].join('\n'),
      );
      await target.removeExport(ref);
      expect(tgtd.ops).toEqual(['show target', 'delete target', 'delete account']);
      expect(deleted(tgtd)).toEqual(['target 7', 'BoundUser123']);
      expect(() => statSync(target.configFile('volume-0000000a'))).toThrow();
    });

    test("else the account the target's config names (tgtd lost the target, or serves another IQN there)", async () => {
      const { tgtd, target } = await withConfig('ConfigUser01');
      tgtd.answer = listing(
        'Target 7: iqn.2010-10.org.openstack:volume-0000000b\n    Account information:\n        OtherUser123\n',
      );
      await target.removeExport(ref);
      expect(deleted(tgtd)).toEqual(['target 7', 'ConfigUser01']);
      expect(() => statSync(target.configFile('volume-0000000a'))).toThrow();
    });

    test('when neither names one, target and file go and the account is left with a warning, no secret', async () => {
      const lines: string[] = [];
      const tgtd = new ScriptedTgtd();
      const dir = mkdtempSync(join(tmpdir(), 'basalt-tgt-'));
      dirs.push(dir);
      const target = new TgtTarget(
        tgtd,
        { volumesDir: dir, portal },
        createLogger({ name: 'test', level: 'warn', destination: { write: (l: string) => lines.push(l) } }),
      );
      // a config naming a user Basalt never makes is no evidence
      await target.createExport(spec());
      writeFileSync(
        target.configFile('volume-0000000a'),
        readFileSync(target.configFile('volume-0000000a'), 'utf8').replace(
          'incominguser UserName1234',
          'incominguser bad,user=x',
        ),
      );
      tgtd.requests.length = 0;
      await target.removeExport(ref);
      expect(deleted(tgtd)).toEqual(['target 7']);
      expect(() => statSync(target.configFile('volume-0000000a'))).toThrow();
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] as string)).toMatchObject({
        level: 40,
        volume_id: ref.volumeId,
        tid: 7,
        msg: 'no CHAP account found for the export: any left is for the reconciler',
      });
      expect(lines[0]).not.toContain('Secret1234567890');
    });
  });

  describe('storedCredentials: the CHAP account of the export as its config file keeps it', () => {
    const ref = { name: 'volume-0000000a', iqn: 'iqn.2010-10.org.openstack:volume-0000000a' };
    const rewrite = (target: TgtTarget, from: string, to: string) => {
      const file = target.configFile(ref.name);
      writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
    };

    test('what the last write of the config said, from the file alone', async () => {
      const { tgtd, target } = setup();
      await target.createExport(spec({ initiators: ['10.0.0.5'] }));
      await target.setInitiators(spec({ chapUser: 'OtherUser123', chapPassword: 'OtherSecret12345' }), []);
      tgtd.requests.length = 0;
      expect(await target.storedCredentials(ref)).toEqual({
        user: 'OtherUser123',
        password: 'OtherSecret12345',
      });
      expect(tgtd.requests).toEqual([]);
    });

    test('none without a config, from the config of another IQN, or from an account Basalt never makes', async () => {
      const { target } = setup();
      expect(await target.storedCredentials(ref)).toBeUndefined();
      await target.createExport(spec());
      expect(
        await target.storedCredentials({ ...ref, iqn: 'iqn.2010-10.org.openstack:volume-0000000b' }),
      ).toBeUndefined();
      rewrite(target, 'Secret1234567890', 'short');
      expect(await target.storedCredentials(ref)).toBeUndefined();
      rewrite(target, 'incominguser UserName1234 short', 'incominguser bad,user=x Secret1234567890');
      expect(await target.storedCredentials(ref)).toBeUndefined();
    });

    test('a name that is not one of the directory is refused before any file is read', async () => {
      const { target } = setup();
      await expect(target.storedCredentials({ ...ref, name: '../etc/passwd' })).rejects.toThrow();
    });
  });

  test.each([
    ['a name with a slash', { name: '../etc/passwd' }],
    ['a name starting with a dash', { name: '-rf' }],
    ['a bad IQN', { iqn: 'iqn.2010-10.org.openstack:vol; reboot' }],
    ['a short CHAP password', { chapPassword: 'short' }],
    ['a bad initiator address', { initiators: ['1.2.3.4; rm'] }],
    ['a zero target number', { tid: 0 }],
  ])('refuses %s before asking tgtd anything', async (_what, over) => {
    const { tgtd, target } = setup();
    await expect(target.createExport(spec(over))).rejects.toThrow();
    expect(tgtd.requests).toHaveLength(0);
  });

  test('every request is logged at debug, never with the CHAP secret', async () => {
    const lines: string[] = [];
    const debugLog = createLogger({
      name: 'test',
      level: 'debug',
      destination: { write: (l: string) => lines.push(l) },
    });
    const tgtd = new ScriptedTgtd();
    const dir = mkdtempSync(join(tmpdir(), 'basalt-tgt-'));
    dirs.push(dir);
    await new TgtTarget(tgtd, { volumesDir: dir, portal }, debugLog).createExport(
      spec({ initiators: ['10.0.0.5'] }),
    );
    expect(lines).toHaveLength(5);
    expect(lines.join('')).toContain('create account UserName1234');
    expect(lines.join('')).not.toContain('Secret1234567890');
  });

  test('exportExists reads the target list', async () => {
    const { tgtd, target } = setup();
    tgtd.answer = () => ({
      code: 0,
      text: 'Target 7: iqn.2010-10.org.openstack:volume-0000000a\n    System information:\n',
    });
    expect(await target.exportExists(spec())).toBe(true);
    expect(await target.exportExists(spec({ tid: 8 }))).toBe(false);
  });

  test('providerLocation names the portal, the target number and the IQN with LUN 1', () => {
    const { target } = setup();
    expect(target.providerLocation(spec())).toBe(
      '192.0.2.10:3260,7 iqn.2010-10.org.openstack:volume-0000000a 1',
    );
  });

  test('initializeConnection changes the ACL of a live export and answers os-brick connection properties', async () => {
    const { tgtd, target } = setup();
    const listing = {
      code: 0,
      text: 'Target 7: iqn.2010-10.org.openstack:volume-0000000a\n    ACL information:\n        10.0.0.1\n',
    };
    tgtd.answer = (r) => (r.op === TgtOp.show ? listing : { code: 0, text: '' });
    const info = await target.initializeConnection(spec({ initiators: ['10.0.0.1', '10.0.0.2'] }), [
      '10.0.0.1',
    ]);
    expect(tgtd.ops).toEqual(['show target', 'new account', 'bind account', 'bind target']);
    expect(tgtd.requests[3]?.params?.['initiator-address']).toBe('10.0.0.2');
    expect(info).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_portal: '192.0.2.10:3260',
        target_iqn: 'iqn.2010-10.org.openstack:volume-0000000a',
        target_lun: 1,
        target_discovered: false,
        volume_id: 'c2ab0e0f-3f5c-4c4b-9d47-2f0a8f3a2b10',
        auth_method: 'CHAP',
        auth_username: 'UserName1234',
        auth_password: 'Secret1234567890',
      },
    });
  });

  test('initializeConnection adds only what the live target lacks', async () => {
    const { tgtd, target } = setup();
    const listing = {
      code: 0,
      text: [
        'Target 7: iqn.2010-10.org.openstack:volume-0000000a',
        '    System information:',
        '        Driver: iscsi',
        '    Account information:',
        '        UserName1234',
        '        OutUser12345 (outgoing)',
        '    ACL information:',
        '        10.0.0.1',
        'Target 8: iqn.2010-10.org.openstack:volume-0000000b',
        '    Account information:',
        '        OtherUser123',
        '    ACL information:',
        '        10.0.0.3',
        '',
      ].join('\n'),
    };
    tgtd.answer = (r) => (r.op === TgtOp.show ? listing : { code: 0, text: '' });
    // the account is bound and 10.0.0.1 in the ACL already: only 10.0.0.2 goes in
    await target.initializeConnection(spec({ initiators: ['10.0.0.1', '10.0.0.2'] }), ['10.0.0.1']);
    expect(tgtd.ops).toEqual(['show target', 'bind target']);
    expect(tgtd.requests[1]?.params?.['initiator-address']).toBe('10.0.0.2');
    // an entry the records hold but tgtd lost is added again
    tgtd.requests.length = 0;
    await target.initializeConnection(spec({ initiators: ['10.0.0.1', '10.0.0.3'] }), [
      '10.0.0.1',
      '10.0.0.3',
    ]);
    expect(tgtd.ops).toEqual(['show target', 'bind target']);
    expect(tgtd.requests[1]?.params?.['initiator-address']).toBe('10.0.0.3');
    // an account bound only as outgoing lets nobody in: the incoming one is made and bound
    tgtd.requests.length = 0;
    listing.text = listing.text.replace('        UserName1234\n', '');
    await target.initializeConnection(spec({ initiators: ['10.0.0.1', '10.0.0.2'] }), ['10.0.0.1']);
    expect(tgtd.ops).toEqual(['show target', 'new account', 'bind account', 'bind target']);
  });

  test('initializeConnection makes the export again when tgtd lost it', async () => {
    const { tgtd, target } = setup();
    await target.initializeConnection(spec({ initiators: ['10.0.0.1'] }), []);
    expect(tgtd.ops.slice(0, 3)).toEqual(['show target', 'new target', 'new logicalunit']);
  });

  test('terminateConnection unbinds the initiators no longer connected', async () => {
    const { tgtd, target } = setup();
    await target.terminateConnection(spec({ initiators: [] }), ['10.0.0.1']);
    expect(tgtd.ops).toEqual(['unbind target']);
  });
});
