import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ScriptedRunner } from '@basalt/exec';
import { LibvirtSecrets, secretUuid } from './libvirt-secrets';
import { Virsh } from './virsh';

const URI = 'qemu:///system';
const OLD = '13e20742-25b5-4d1a-ac22-4466dd6e46c3';
const LIST = ` UUID                                   Usage\n--------------------------------------------------------\n ${OLD}   iscsi basalt-volume-v1\n`;
const NOT_FOUND = {
  exitCode: 1,
  stderr: "error: failed to get secret 'x'\nerror: Secret not found: no secret with matching uuid 'x'",
};

describe('LibvirtSecrets', () => {
  test('a secret is named by its usage: same usage, same UUID, a UUID of version 5', () => {
    expect(secretUuid('basalt-volume-v1')).toBe(secretUuid('basalt-volume-v1'));
    expect(secretUuid('basalt-volume-v1')).not.toBe(secretUuid('basalt-volume-v2'));
    expect(secretUuid('basalt-volume-v1')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  test('define and set-value without a listing; the value goes through a private file that is gone afterwards, never through argv', async () => {
    const defined: string[] = [];
    const seen: Array<{ value: string; fileMode: number; dirMode: number; file: string; uuid: string }> = [];
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', URI, 'secret-define'], (argv) => {
        defined.push(readFileSync(argv[4] ?? '', 'utf8'));
        return { stdout: `Secret ${secretUuid('basalt-volume-v1')} created\n` };
      })
      .on(['virsh', '-c', URI, 'secret-set-value'], (argv) => {
        const file = argv[argv.indexOf('--file') + 1] ?? '';
        seen.push({
          file,
          uuid: argv[4] ?? '',
          value: readFileSync(file, 'utf8'),
          fileMode: statSync(file).mode & 0o777,
          dirMode: statSync(dirname(file)).mode & 0o777,
        });
        return {};
      });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    const uuid = secretUuid('basalt-volume-v1');
    await expect(secrets.ensure('basalt-volume-v1', 'Secret-1234')).resolves.toBe(uuid);

    expect(runner.argvs.map((a) => a[3])).toEqual(['secret-define', 'secret-set-value']);
    expect(seen).toEqual([
      { file: expect.any(String), uuid, value: 'Secret-1234', fileMode: 0o600, dirMode: 0o700 },
    ]);
    expect(existsSync(dirname(seen[0]?.file ?? '/'))).toBe(false);
    for (const call of runner.calls) expect(call.argv.join(' ')).not.toContain('Secret-1234');
    expect(defined).toHaveLength(1);
    expect(defined[0]).toContain(`<uuid>${uuid}</uuid>`);
    expect(defined[0]).toContain("<usage type='iscsi'>");
    expect(defined[0]).toContain('<target>basalt-volume-v1</target>');
    expect(defined[0]).toContain("private='yes'");
    expect(defined[0]).not.toContain('Secret-1234');
  });

  test('a secret of the usage under another UUID is reused; the file is removed even when libvirt refuses the value', async () => {
    let file = '';
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', URI, 'secret-define'], {
        exitCode: 1,
        stderr: `error: internal error: a secret with UUID ${OLD} already defined for use with basalt-volume-v1`,
      })
      .on(['virsh', '-c', URI, 'secret-list'], { stdout: LIST })
      .on(['virsh', '-c', URI, 'secret-set-value'], (argv) => {
        file = argv[argv.indexOf('--file') + 1] ?? '';
        return { exitCode: 1, stderr: 'error: internal error' };
      });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await expect(secrets.ensure('basalt-volume-v1', 'pw')).rejects.toThrow('secret-set-value failed');
    expect(runner.argvs.find((a) => a[3] === 'secret-set-value')?.[4]).toBe(OLD);
    expect(existsSync(file)).toBe(false);
  });

  test('remove undefines by the UUID of the usage, else finds it by usage; a secret already gone is fine', async () => {
    const mine = secretUuid('basalt-volume-v3');
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', URI, 'secret-list'], { stdout: LIST })
      .on(['virsh', '-c', URI, 'secret-undefine'], (argv) =>
        argv[4] === mine || argv[4] === OLD ? {} : NOT_FOUND,
      );
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await secrets.remove('basalt-volume-v3');
    expect(runner.argvs.map((a) => a.slice(3).join(' '))).toEqual([`secret-undefine ${mine}`]);
    await secrets.remove('basalt-volume-v1');
    await secrets.remove('basalt-volume-v2');
    expect(runner.argvs.filter((a) => a[3] === 'secret-undefine').map((a) => a[4])).toEqual([
      mine,
      secretUuid('basalt-volume-v1'),
      OLD,
      secretUuid('basalt-volume-v2'),
    ]);
    await expect(secrets.lookup('basalt-volume-v2')).resolves.toBeUndefined();
    await expect(secrets.remove('bad usage; x')).rejects.toThrow('Bad secret usage name');
  });
});
