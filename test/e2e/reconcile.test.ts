import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TgtTarget } from '../../services/volume-worker/src/targets/tgt-target';
import { TgtdControl } from '../../services/volume-worker/src/targets/tgtd-control';
import { request, waitForVolume } from '../support/http';
import { ROOT } from '../support/processes';
import { quietLogger } from '../support/rpc';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const PREFIX = 'iqn.2010-10.org.openstack:';
const FOREIGN_IQN = 'iqn.2026-12.org.example:not-basalt';

/**
 * What a crash or a hand can leave on a volume host, planted for real, then `basalt reconcile`:
 * its dry run shows every finding and changes nothing; the real run removes what Basalt made and
 * no row needs, leaves what is not Basalt's (reported), and leaves the live volume as it was.
 */
describe('basalt reconcile', () => {
  const stack = new VolumeStack();
  const token = 'tester:proj1';
  const tgtadm = (...args: string[]) =>
    run('tgtadm', ['-C', String(stack.tgtd.controlPort), '--lld', 'iscsi', ...args]);
  const basalt = (...args: string[]) =>
    run(process.execPath, [join(ROOT, 'libs/cli/bin/basalt.js'), ...args], {
      env: { ...process.env, ...stack.env() },
    }).then((r) => r.stdout);

  beforeAll(() => stack.start(), 60_000);
  afterAll(async () => {
    await tgtadm('--op', 'delete', '--force', '--mode', 'target', '--tid', '901').catch(() => undefined);
    await stack.stop();
  }, 60_000);

  test('dry run shows, the real run removes only its own orphans, the live volume is untouched', async () => {
    const api = `${stack.volumeUrl}/v3/proj1`;
    const created = await request(`${api}/volumes`, { method: 'POST', token, body: { volume: { size: 1 } } });
    const live = await waitForVolume(api, token, created.body.volume.id, ['available']);
    // the one target tgtd serves is the live volume's
    const [, liveTid = '', liveIqn = ''] = /^Target (\d+): (\S+)$/m.exec(await stack.tgtd.targets()) ?? [];
    expect(liveIqn).toMatch(/^iqn\.2010-10\.org\.openstack:volume-/);

    // Basalt's own leftovers: a volume file, a whole export (target, account, ACL, config) of a
    // volume with no row, a config write that never finished, an ACL entry no attachment holds
    writeFileSync(join(stack.volumesPath, 'volume-0000dead'), '');
    writeFileSync(join(stack.volumesPath, 'volume-0000beef'), '');
    const target = new TgtTarget(
      new TgtdControl(stack.tgtd.controlPort),
      { volumesDir: stack.volumesDir, portal: { ip: '127.0.0.1', port: stack.tgtd.port } },
      quietLogger(),
    );
    await target.createExport({
      volumeId: '00000000-0000-4000-8000-0000000beef0',
      name: 'volume-0000beef',
      iqn: `${PREFIX}volume-0000beef`,
      tid: 900,
      backingPath: join(stack.volumesPath, 'volume-0000beef'),
      chapUser: 'OrphanUser01',
      chapPassword: 'OrphanSecret0001',
      initiators: ['127.0.0.9'],
    });
    writeFileSync(join(stack.volumesDir, '.volume-0000cafe.0badf00d.tmp'), '');
    await tgtadm('--op', 'bind', '--mode', 'target', '--tid', liveTid, '-I', '127.0.0.8');
    // not Basalt's: only reported
    writeFileSync(join(stack.volumesPath, 'notes.txt'), 'kept');
    await tgtadm('--op', 'new', '--mode', 'target', '--tid', '901', '-T', FOREIGN_IQN);

    const expected = [
      ['volume', 'volume-0000dead', 'would remove'],
      ['volume', 'volume-0000beef', 'would remove'],
      ['volume', 'notes.txt', 'reported'],
      ['target', `900 ${PREFIX}volume-0000beef`, 'would remove'],
      ['target', `901 ${FOREIGN_IQN}`, 'reported'],
      ['account', 'OrphanUser01', 'would remove'],
      ['acl', `${liveTid} 127.0.0.8`, 'would remove'],
      ['config', 'volume-0000beef', 'would remove'],
      ['config', '.volume-0000cafe.0badf00d.tmp', 'would remove'],
    ];
    const dry = await basalt('reconcile', '--dry-run');
    for (const [kind, name, action] of expected) {
      expect(dry).toMatch(new RegExp(`\\| ${kind} +\\| ${literally(name as string)} +\\| ${action} +\\|`));
    }
    expect(dry).toContain(`${expected.length} finding(s) on 1 host(s) (dry run: nothing changed)`);
    expect(existsSync(join(stack.volumesPath, 'volume-0000dead'))).toBe(true);
    expect(await stack.tgtd.targets()).toContain(`Target 900: ${PREFIX}volume-0000beef`);

    const real = await basalt('reconcile');
    expect(real).toMatch(/\| volume +\| volume-0000dead +\| removed +\|/);
    expect(real).toMatch(/\| target +\| 901 \S+ +\| reported +\|/);
    expect(existsSync(join(stack.volumesPath, 'volume-0000dead'))).toBe(false);
    expect(existsSync(join(stack.volumesPath, 'volume-0000beef'))).toBe(false);
    expect(existsSync(join(stack.volumesPath, 'notes.txt'))).toBe(true);
    expect(existsSync(join(stack.volumesDir, 'volume-0000beef'))).toBe(false);
    expect(existsSync(join(stack.volumesDir, '.volume-0000cafe.0badf00d.tmp'))).toBe(false);
    const after = await stack.tgtd.targets();
    expect(after).not.toContain('volume-0000beef');
    expect(after).toContain(`Target 901: ${FOREIGN_IQN}`);
    expect(after).toContain(`Target ${liveTid}: ${liveIqn}`);
    expect(after).not.toContain('127.0.0.8');
    expect(await stack.tgtd.accounts()).not.toContain('OrphanUser01');
    // the live volume is exactly as it was: only the foreign things are left to report
    const again = await basalt('reconcile', '--dry-run');
    expect(again).toContain('2 finding(s) on 1 host(s)');
    const deleted = await request(`${api}/volumes/${live.id}`, { method: 'DELETE', token });
    expect(deleted.status).toBe(202);
    await waitForVolume(api, token, live.id, ['deleted']);
  }, 60_000);

  test('a host with no worker is a clear error', async () => {
    const failure = await basalt('reconcile', '--host', 'no-such-host').catch((e: { stderr: string }) => e);
    expect((failure as { stderr: string }).stderr).toContain(
      'no worker that reconciles runs on host no-such-host',
    );
  }, 30_000);
});

function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
