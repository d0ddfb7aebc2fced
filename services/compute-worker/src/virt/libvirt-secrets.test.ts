import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ScriptedRunner } from '@basalt/exec';
import { LibvirtSecrets } from './libvirt-secrets';
import { Virsh } from './virsh';

const URI = 'qemu:///system';
const UUID = '13e20742-25b5-4d1a-ac22-4466dd6e46c3';
const LIST = ` UUID                                   Usage\n--------------------------------------------------------\n ${UUID}   iscsi basalt-volume-v1\n`;

describe('LibvirtSecrets', () => {
  test('the value goes through a private file that is gone afterwards, never through argv', async () => {
    const defined: string[] = [];
    const seen: Array<{ value: string; fileMode: number; dirMode: number; file: string }> = [];
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', URI, 'secret-list'], { stdout: ' UUID   Usage\n-----------\n' })
      .on(['virsh', '-c', URI, 'secret-define'], (argv) => {
        defined.push(readFileSync(argv[4] ?? '', 'utf8'));
        return { stdout: `Secret ${UUID} created\n` };
      })
      .on(['virsh', '-c', URI, 'secret-set-value'], (argv) => {
        const file = argv[argv.indexOf('--file') + 1] ?? '';
        seen.push({
          file,
          value: readFileSync(file, 'utf8'),
          fileMode: statSync(file).mode & 0o777,
          dirMode: statSync(dirname(file)).mode & 0o777,
        });
        return {};
      });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await expect(secrets.ensure('basalt-volume-v1', 'Secret-1234')).resolves.toBe(UUID);

    expect(seen).toEqual([
      { file: expect.any(String), value: 'Secret-1234', fileMode: 0o600, dirMode: 0o700 },
    ]);
    expect(existsSync(dirname(seen[0]?.file ?? '/'))).toBe(false);
    for (const call of runner.calls) expect(call.argv.join(' ')).not.toContain('Secret-1234');
    expect(defined).toHaveLength(1);
    expect(defined[0]).toContain("<usage type='iscsi'>");
    expect(defined[0]).toContain('<target>basalt-volume-v1</target>');
    expect(defined[0]).toContain("private='yes'");
    expect(defined[0]).not.toContain('Secret-1234');
  });

  test('an existing secret is reused; the file is removed even when libvirt refuses the value', async () => {
    let file = '';
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', URI, 'secret-list'], { stdout: LIST })
      .on(['virsh', '-c', URI, 'secret-set-value'], (argv) => {
        file = argv[argv.indexOf('--file') + 1] ?? '';
        return { exitCode: 1, stderr: 'error: internal error' };
      });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await expect(secrets.ensure('basalt-volume-v1', 'pw')).rejects.toThrow('secret-set-value failed');
    expect(runner.argvs.some((a) => a[3] === 'secret-define')).toBe(false);
    expect(existsSync(file)).toBe(false);
  });

  test('remove finds the secret by usage; a secret already gone is fine', async () => {
    const runner = new ScriptedRunner().on(['virsh', '-c', URI, 'secret-list'], { stdout: LIST });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await secrets.remove('basalt-volume-v1');
    await secrets.remove('basalt-volume-v2');
    expect(runner.argvs.filter((a) => a[3] === 'secret-undefine').map((a) => a[4])).toEqual([UUID]);
    await expect(secrets.lookup('basalt-volume-v2')).resolves.toBeUndefined();
    await expect(secrets.lookup('bad usage; x')).rejects.toThrow('Bad secret usage name');
  });
});
