import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, CommandError, type CommandResult, ScriptedRunner } from '@basalt/exec';
import { LibvirtSecrets, secretUuid } from './libvirt-secrets';
import { Virsh } from './virsh';

const URI = 'qemu:///system';
const OLD = '13e20742-25b5-4d1a-ac22-4466dd6e46c3';

interface Seen {
  readonly value: string;
  readonly fileMode: number;
  readonly dirMode: number;
  readonly file: string;
}

/**
 * libvirt's secrets as virsh shows them, one command or a `;` sequence per run (which, like
 * virsh, exits with the status of its last command).
 */
class SecretsVirsh extends ScriptedRunner {
  readonly secrets = new Map<string, { usage: string; value?: string }>();
  readonly seen: Seen[] = [];
  readonly definitions: string[] = [];
  refuseValues = false;

  override async run(command: Command): Promise<CommandResult> {
    this.calls.push(command);
    const [, , , ...rest] = command.argv;
    const commands = rest.length === 1 ? (rest[0] ?? '').split(' ; ').map((c) => c.split(' ')) : [rest];
    let result = { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
    for (const words of commands) result = { ...result, ...this.one(words) };
    if (result.exitCode !== 0) {
      throw CommandError.of(command, 'failed', result.exitCode, result.stderr, { retryable: false });
    }
    return result;
  }

  private one(words: readonly string[]): Partial<CommandResult> {
    const [verb, arg = ''] = words;
    if (verb === 'secret-define') {
      const xml = readFileSync(arg, 'utf8');
      this.definitions.push(xml);
      const uuid = /<uuid>([^<]+)<\/uuid>/.exec(xml)?.[1] ?? '';
      const usage = /<target>([^<]+)<\/target>/.exec(xml)?.[1] ?? '';
      const taken = [...this.secrets].find(([u, s]) => s.usage === usage && u !== uuid);
      if (taken)
        return {
          exitCode: 1,
          stderr: `error: a secret with UUID ${taken[0]} already defined for use with ${usage}`,
        };
      this.secrets.set(uuid, { ...this.secrets.get(uuid), usage });
      return { exitCode: 0, stdout: `Secret ${uuid} created\n` };
    }
    if (verb === 'secret-set-value') {
      const file = words[words.indexOf('--file') + 1] ?? '';
      this.seen.push({
        file,
        value: readFileSync(file, 'utf8'),
        fileMode: statSync(file).mode & 0o777,
        dirMode: statSync(dirname(file)).mode & 0o777,
      });
      const secret = this.secrets.get(arg);
      if (!secret)
        return { exitCode: 1, stderr: `error: Secret not found: no secret with matching uuid '${arg}'` };
      if (this.refuseValues) return { exitCode: 1, stderr: 'error: internal error' };
      secret.value = this.seen.at(-1)?.value ?? '';
      return { exitCode: 0 };
    }
    if (verb === 'secret-undefine') {
      if (!this.secrets.delete(arg)) return { exitCode: 1, stderr: `error: failed to get secret '${arg}'` };
      return { exitCode: 0 };
    }
    if (verb === 'secret-list') {
      const rows = [...this.secrets].map(([u, s]) => ` ${u}   iscsi ${s.usage}\n`).join('');
      return { exitCode: 0, stdout: ` UUID   Usage\n-----------\n${rows}` };
    }
    return { exitCode: 1, stderr: `error: unknown command: '${verb}'` };
  }
}

describe('LibvirtSecrets', () => {
  test('a secret is named by its usage: same usage, same UUID, a UUID of version 5', () => {
    expect(secretUuid('basalt-volume-v1')).toBe(secretUuid('basalt-volume-v1'));
    expect(secretUuid('basalt-volume-v1')).not.toBe(secretUuid('basalt-volume-v2'));
    expect(secretUuid('basalt-volume-v1')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  test('define makes the secret without a value; ensure then sets it in one run, through a private file that is gone afterwards, never through argv', async () => {
    const runner = new SecretsVirsh();
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    const uuid = secretUuid('basalt-volume-v1');
    await expect(secrets.define('basalt-volume-v1')).resolves.toBe(uuid);
    // and again, as a redelivered attach would
    await expect(secrets.define('basalt-volume-v1')).resolves.toBe(uuid);
    expect(runner.secrets).toEqual(new Map([[uuid, { usage: 'basalt-volume-v1' }]]));
    runner.calls.length = 0;
    await expect(secrets.ensure('basalt-volume-v1', 'Secret-1234')).resolves.toBe(uuid);
    await expect(secrets.ensure('basalt-volume-v1', 'Secret-1234')).resolves.toBe(uuid);

    expect(runner.calls).toHaveLength(2);
    expect(runner.argvs[0]).toEqual([
      'virsh',
      '-c',
      URI,
      'secret-set-value',
      uuid,
      '--file',
      expect.stringMatching(/\/document-[0-9a-f]{16}$/),
      '--plain',
    ]);
    expect(runner.secrets).toEqual(new Map([[uuid, { usage: 'basalt-volume-v1', value: 'Secret-1234' }]]));
    expect(runner.seen[0]).toEqual({
      file: expect.any(String),
      value: 'Secret-1234',
      fileMode: 0o600,
      dirMode: 0o700,
    });
    for (const seen of runner.seen) expect(existsSync(seen.file)).toBe(false);
    for (const call of runner.calls) expect(call.argv.join(' ')).not.toContain('Secret-1234');
    const [definition] = runner.definitions;
    expect(definition).toContain(`<uuid>${uuid}</uuid>`);
    expect(definition).toContain("<usage type='iscsi'>");
    expect(definition).toContain('<target>basalt-volume-v1</target>');
    expect(definition).toContain("private='yes'");
    expect(definition).not.toContain('Secret-1234');
  });

  test('ensure of a secret not defined yet defines it, then sets the value', async () => {
    const runner = new SecretsVirsh();
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    const uuid = secretUuid('basalt-volume-v2');
    await expect(secrets.ensure('basalt-volume-v2', 'Secret-5678')).resolves.toBe(uuid);
    expect(runner.argvs.map((argv) => argv[3])).toEqual([
      'secret-set-value',
      'secret-define',
      'secret-set-value',
    ]);
    expect(runner.secrets).toEqual(new Map([[uuid, { usage: 'basalt-volume-v2', value: 'Secret-5678' }]]));
  });

  test('a secret of the usage under another UUID is reused; the file is removed even when libvirt refuses the value', async () => {
    const runner = new SecretsVirsh();
    runner.secrets.set(OLD, { usage: 'basalt-volume-v1' });
    const secrets = new LibvirtSecrets(new Virsh(runner, URI));
    await expect(secrets.ensure('basalt-volume-v1', 'pw')).resolves.toBe(OLD);
    expect(runner.secrets).toEqual(new Map([[OLD, { usage: 'basalt-volume-v1', value: 'pw' }]]));

    runner.refuseValues = true;
    await expect(secrets.ensure('basalt-volume-v1', 'pw2')).rejects.toThrow('secret-set-value failed');
    for (const seen of runner.seen) expect(existsSync(seen.file)).toBe(false);
  });

  test('remove undefines by the UUID of the usage, else finds it by usage; a secret already gone is fine', async () => {
    const runner = new SecretsVirsh();
    const mine = secretUuid('basalt-volume-v3');
    runner.secrets.set(mine, { usage: 'basalt-volume-v3' });
    runner.secrets.set(OLD, { usage: 'basalt-volume-v1' });
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
    expect(runner.secrets.size).toBe(0);
    await expect(secrets.lookup('basalt-volume-v2')).resolves.toBeUndefined();
    await expect(secrets.remove('bad usage; x')).rejects.toThrow('Bad secret usage name');
  });
});
