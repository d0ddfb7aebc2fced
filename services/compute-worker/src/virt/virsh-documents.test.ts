import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ScriptedRunner } from '@basalt/exec';
import { Virsh } from './virsh';

/** A pid no process has now: one that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  if (!child.pid) throw new Error('no child process');
  return child.pid;
}

describe("virsh's documents directory", () => {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  test("is this process's own and private; a dead process's is removed, a live one's kept", async () => {
    const orphan = mkdtempSync(join(tmpdir(), `basalt-virsh-${deadPid()}-`));
    const live = mkdtempSync(join(tmpdir(), `basalt-virsh-${process.ppid}-`));
    made.push(orphan, live);
    let seen: { path: string; content: string; dirMode: number } | undefined;
    await new Virsh(new ScriptedRunner(), 'qemu:///system').withFile('<domain/>', async (path) => {
      seen = { path, content: readFileSync(path, 'utf8'), dirMode: statSync(dirname(path)).mode & 0o777 };
    });
    expect(seen?.content).toBe('<domain/>');
    expect(dirname(seen?.path ?? '')).toMatch(new RegExp(`/basalt-virsh-${process.pid}-[^/]+$`));
    expect(seen?.dirMode).toBe(0o700);
    expect(existsSync(seen?.path ?? '')).toBe(false);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });
});
