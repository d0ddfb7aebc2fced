import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ExecaRunner } from '@basalt/exec';
import { type ExportSpec, TgtAdmTarget } from '../../services/volume-worker/src/targets/tgtadm';
import { tempDir } from '../support/processes';
import { quietLogger } from '../support/rpc';
import { TgtdFixture } from '../support/tgtd';

const run = promisify(execFile);

describe('tgtadm target helper against a real tgtd', () => {
  let tgtd: TgtdFixture;
  let target: TgtAdmTarget;
  let spec: ExportSpec;
  const dir = tempDir('basalt-tgt');
  const volumesDir = join(dir, 'tgt');
  const url = () => `iscsi://${spec.chapUser}%${spec.chapPassword}@127.0.0.1:${tgtd.port}/${spec.iqn}/1`;

  beforeAll(async () => {
    tgtd = await TgtdFixture.start();
    target = new TgtAdmTarget(
      new ExecaRunner(quietLogger()),
      { controlPort: tgtd.controlPort, volumesDir },
      quietLogger(),
    );
    const backing = join(dir, 'volume-t0000001');
    await run('truncate', ['-s', '64M', backing]);
    spec = {
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

  test('an export is created once however often it is asked for, and serves with CHAP', async () => {
    await target.createExport(spec);
    await target.createExport(spec);
    expect((await tgtd.targets()).match(/^Target \d+:/gm)).toHaveLength(1);
    expect(await target.exportExists(spec)).toBe(true);
    expect((await run('iscsi-inq', [url()])).stdout).toContain('DIRECT_ACCESS');
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

  test('removeExport leaves no target, account or file behind', async () => {
    const tid = Number(/^Target (\d+): /m.exec(await tgtd.targets())?.[1]);
    await target.removeExport({ name: spec.name, tid, chapUser: spec.chapUser });
    expect(await tgtd.targets()).toBe('');
    expect(await tgtd.accounts()).not.toContain(spec.chapUser);
    await expect(run('ls', [target.configFile(spec.name)])).rejects.toBeDefined();
  });
});
