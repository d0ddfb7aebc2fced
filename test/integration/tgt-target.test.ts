import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExportSpec } from '../../services/volume-worker/src/targets/iscsi-target';
import { TgtTarget } from '../../services/volume-worker/src/targets/tgt-target';
import { TgtdControl, TgtErrno, TgtMode, TgtOp } from '../../services/volume-worker/src/targets/tgtd-control';
import { tempDir } from '../support/processes';
import { quietLogger } from '../support/rpc';
import { TgtdFixture } from '../support/tgtd';

const run = promisify(execFile);

describe('the tgt target against a real tgtd (its management socket)', () => {
  let tgtd: TgtdFixture;
  let target: TgtTarget;
  let spec: ExportSpec;
  const dir = tempDir('basalt-tgt');
  const volumesDir = join(dir, 'tgt');
  const url = () => `iscsi://${spec.chapUser}%${spec.chapPassword}@127.0.0.1:${tgtd.port}/${spec.iqn}/1`;

  beforeAll(async () => {
    tgtd = await TgtdFixture.start();
    target = new TgtTarget(
      new TgtdControl(tgtd.controlPort),
      { volumesDir, portal: { ip: '127.0.0.1', port: tgtd.port } },
      quietLogger(),
    );
    await target.checkForSetup();
    const backing = join(dir, 'volume-t0000001');
    await run('truncate', ['-s', '64M', backing]);
    spec = {
      volumeId: '6f1c2a0e-8b7d-4e2f-9c3a-1d5e7f9a0b2c',
      name: 'volume-t0000001',
      iqn: 'iqn.2010-10.org.openstack:volume-t0000001',
      tid: 1,
      backingPath: backing,
      chapUser: 'TestUser0001',
      chapPassword: 'TestSecret000001',
      initiators: ['127.0.0.1'],
    };
  }, 30_000);
  afterAll(async () => {
    await tgtd?.stop();
    await run('rm', ['-rf', dir]);
  });

  test('the probe accepts this tgtd, leaves no account behind, and names the socket when none listens', async () => {
    await expect(new TgtdControl(tgtd.controlPort).probe()).resolves.toBeUndefined();
    expect(await tgtd.accounts()).not.toContain('basaltprobe');
    await expect(new TgtdControl(tgtd.controlPort + 1000).probe()).rejects.toThrow(
      `cannot reach tgtd at /var/run/tgtd/socket.${tgtd.controlPort + 1000}`,
    );
  });

  test("a burst of requests waits its turn instead of overflowing tgtd's short backlog", async () => {
    const control = new TgtdControl(tgtd.controlPort);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => control.request({ mode: TgtMode.system, op: TgtOp.show })),
    );
    expect(answers.every((a) => a.code === TgtErrno.success && a.text.startsWith('System:'))).toBe(true);
  });

  test('an export is created once however often it is asked for, and serves with CHAP', async () => {
    await target.createExport(spec);
    await target.createExport(spec);
    expect((await tgtd.targets()).match(/^Target \d+:/gm)).toHaveLength(1);
    expect(await target.exportExists(spec)).toBe(true);
    expect((await run('iscsi-inq', [url()])).stdout).toContain('DIRECT_ACCESS');
    // what tgtadm itself shows: the LUN on the backing file, the account bound, the ACL
    const shown = await tgtd.targets();
    expect(shown).toContain(`Backing store path: ${spec.backingPath}`);
    expect(shown).toMatch(new RegExp(`Account information:\\s+${spec.chapUser}`));
    expect(shown).toMatch(/ACL information:\s+127\.0\.0\.1/);
    expect(await tgtd.accounts()).toContain(spec.chapUser);
  });

  test('the answers the helper treats as "already done" are the ones tgtd gives', async () => {
    const control = new TgtdControl(tgtd.controlPort);
    const ask = (mode: number, op: number, extra: object = {}) =>
      control.request({ mode, op, ...extra } as Parameters<TgtdControl['request']>[0]).then((a) => a.code);
    const tid = spec.tid;
    expect(await ask(TgtMode.target, TgtOp.new, { tid, params: { targetname: spec.iqn } })).toBe(
      TgtErrno.targetExists,
    );
    expect(
      await ask(TgtMode.logicalunit, TgtOp.new, { tid, lun: 1, params: { path: spec.backingPath } }),
    ).toBe(TgtErrno.lunExists);
    expect(
      await ask(TgtMode.account, TgtOp.new, { params: { user: spec.chapUser, password: spec.chapPassword } }),
    ).toBe(TgtErrno.accountExists);
    expect(await ask(TgtMode.target, TgtOp.bind, { tid, params: { 'initiator-address': '127.0.0.1' } })).toBe(
      TgtErrno.aclExists,
    );
    expect(
      await ask(TgtMode.target, TgtOp.unbind, { tid, params: { 'initiator-address': '10.9.9.9' } }),
    ).toBe(TgtErrno.aclNotFound);
    expect(await ask(TgtMode.logicalunit, TgtOp.delete, { tid, lun: 9 })).toBe(TgtErrno.noLun);
    expect(await ask(TgtMode.target, TgtOp.delete, { tid: 999, force: true })).toBe(TgtErrno.noTarget);
    expect(await ask(TgtMode.account, TgtOp.delete, { params: { user: 'NoSuchUser01' } })).toBe(
      TgtErrno.noAccount,
    );
    expect(
      await ask(TgtMode.logicalunit, TgtOp.new, { tid, lun: 2, params: { path: join(dir, 'missing') } }),
    ).toBe(TgtErrno.invalidRequest);
  });

  test('a connection to a live export sends tgtd only what the target lacks', async () => {
    const control = new TgtdControl(tgtd.controlPort);
    const sent: string[] = [];
    const name = (names: Record<string, number>, value: number) =>
      Object.keys(names).find((k) => names[k] === value);
    const counting = {
      request: (request: Parameters<TgtdControl['request']>[0]) => {
        sent.push(`${name(TgtOp, request.op)} ${name(TgtMode, request.mode)}`);
        return control.request(request);
      },
    } as unknown as TgtdControl;
    const watched = new TgtTarget(
      counting,
      { volumesDir, portal: { ip: '127.0.0.1', port: tgtd.port } },
      quietLogger(),
    );
    const two = { ...spec, initiators: ['127.0.0.1', '127.0.0.2'] };
    await watched.initializeConnection(two, ['127.0.0.1']);
    // the account is bound and 127.0.0.1 let in already (the export above)
    expect(sent).toEqual(['show target', 'bind target']);
    expect(await tgtd.targets()).toMatch(/ACL information:\s+127\.0\.0\.1\s+127\.0\.0\.2/);
    await watched.terminateConnection(spec, two.initiators);
    expect(await tgtd.targets()).not.toContain('127.0.0.2');
    expect((await run('iscsi-inq', [url()])).stdout).toContain('DIRECT_ACCESS');
  });

  test('extend: the LUN is re-read at the new size', async () => {
    await run('truncate', ['-s', '128M', spec.backingPath]);
    await target.extendExport(spec);
    expect((await run('iscsi-readcapacity16', [url()])).stdout).toContain('Total size:134217728');
  });

  test('the config file alone restores the export with tgt-admin after tgtd loses everything', async () => {
    await tgtd.crashAndRestart();
    expect(await target.exportExists(spec)).toBe(false);
    const conf = join(dir, 'targets.conf');
    writeFileSync(conf, `include ${volumesDir}/*\n`);
    await run('tgt-admin', ['-C', String(tgtd.controlPort), '-c', conf, '-e']);
    expect(await tgtd.targets()).toContain(spec.iqn);
    expect((await run('iscsi-inq', [url()])).stdout).toContain('DIRECT_ACCESS');
  });

  test('the credentials read back from the config file re-create a lost export that serves with CHAP', async () => {
    await tgtd.crashAndRestart();
    expect(await target.exportExists(spec)).toBe(false);
    const kept = await target.storedCredentials(spec);
    expect(kept).toEqual({ user: spec.chapUser, password: spec.chapPassword });
    await target.createExport({ ...spec, chapUser: kept!.user, chapPassword: kept!.password });
    expect(await tgtd.accounts()).toContain(spec.chapUser);
    expect((await run('iscsi-inq', [url()])).stdout).toContain('DIRECT_ACCESS');
    // another IQN's file is no source
    expect(await target.storedCredentials({ ...spec, iqn: `${spec.iqn}x` })).toBeUndefined();
  });

  test('removeExport leaves no target, account or file behind', async () => {
    const tid = Number(/^Target (\d+): /m.exec(await tgtd.targets())?.[1]);
    await target.removeExport({ ...spec, tid });
    expect(await tgtd.targets()).toBe('');
    expect(await tgtd.accounts()).not.toContain(spec.chapUser);
    await expect(run('ls', [target.configFile(spec.name)])).rejects.toBeDefined();
  });

  test('removeExport without the CHAP user finds the account tgtd binds, else the one the config names', async () => {
    const control = new TgtdControl(tgtd.controlPort);
    const other = (n: number): ExportSpec => ({
      ...spec,
      name: `volume-t000000${n}`,
      iqn: `iqn.2010-10.org.openstack:volume-t000000${n}`,
      tid: n,
      chapUser: `TestUser000${n}`,
    });
    const refOf = ({
      chapUser: _user,
      chapPassword: _password,
      initiators: _initiators,
      ...ref
    }: ExportSpec) => ref;
    const ref = refOf(other(2));
    // bound in tgtd, named nowhere else: the config has lost its incominguser line
    await target.createExport(other(2));
    writeFileSync(target.configFile(ref.name), `<target ${ref.iqn}>\n</target>\n`);
    expect(await tgtd.accounts()).toContain('TestUser0002');
    await target.removeExport(ref);
    expect(await tgtd.targets()).not.toContain(ref.iqn);
    expect(await tgtd.accounts()).not.toContain('TestUser0002');
    await expect(run('ls', [target.configFile(ref.name)])).rejects.toBeDefined();

    // an account made but not bound (a crash between the two): the config names it
    const unbound = refOf(other(3));
    await target.createExport(other(3));
    const answer = await control.request({
      mode: TgtMode.account,
      op: TgtOp.unbind,
      tid: 3,
      params: { user: 'TestUser0003' },
    });
    expect(answer.code).toBe(TgtErrno.success);
    expect(await tgtd.targets()).not.toContain('TestUser0003');
    await target.removeExport(unbound);
    expect(await tgtd.targets()).not.toContain(unbound.iqn);
    expect(await tgtd.accounts()).not.toContain('TestUser0003');
    await expect(run('ls', [target.configFile(unbound.name)])).rejects.toBeDefined();
  });
});
