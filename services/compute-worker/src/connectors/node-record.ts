import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VolumeConnectionError } from '../virt/errors';
import type { IscsiTarget } from './iscsi-target';

/** The settings this file writes; any older line of them in the record is replaced. */
const AUTH_KEYS = [
  'node.session.auth.authmethod',
  'node.session.auth.username',
  'node.session.auth.password',
];
const END_RECORD = '# END RECORD';

/**
 * Writes a target's CHAP settings into the node record `iscsiadm -m node -o new` made in
 * open-iscsi's node database, which iscsiadm reads again at the login: so the password is never
 * an argv word of iscsiadm (`-o update -v` would make it one, visible in `ps`). The record is
 * `<nodesDir>/<iqn>/<address>,<port>,<tpgt>/default` (or the older `<address>,<port>` file); it is
 * replaced whole by a rename of a file written 0600 beside it. Returns the record's path.
 */
export async function writeNodeAuth(
  nodesDir: string,
  target: IscsiTarget,
  auth: { readonly username: string; readonly password: string },
): Promise<string> {
  const path = await recordPath(nodesDir, target);
  const kept = (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => !AUTH_KEYS.includes(line.split('=')[0]?.trim() ?? ''));
  const end = kept.indexOf(END_RECORD);
  const lines = [
    `node.session.auth.authmethod = CHAP`,
    `node.session.auth.username = ${auth.username}`,
    `node.session.auth.password = ${auth.password}`,
  ];
  if (end >= 0) kept.splice(end, 0, ...lines);
  else kept.splice(kept.at(-1) === '' ? kept.length - 1 : kept.length, 0, ...lines);
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, kept.join('\n'), { mode: 0o600, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return path;
}

/** Where open-iscsi keeps the target's record for this portal with the default interface. */
async function recordPath(nodesDir: string, target: IscsiTarget): Promise<string> {
  const dir = join(nodesDir, target.iqn);
  const portal = `${target.host},${target.port}`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(`${portal},`)).sort()) {
    const record = join(dir, entry, 'default');
    if (
      await stat(record).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return record;
  }
  if (entries.includes(portal) && (await stat(join(dir, portal))).isFile()) return join(dir, portal);
  throw new VolumeConnectionError(`no node record of ${target.iqn} at ${target.portal} in ${nodesDir}`);
}
