import { readdirSync } from 'node:fs';
import { chapCredentials, SecretBox } from '@basalt/db';
import type { TgtdFixture } from './tgtd';

const IQN_PREFIX = 'iqn.2010-10.org.openstack:';

/** What the host holds that the database does not account for, and what it lacks. */
export interface AuditFindings {
  /** Volume files with no live volume. */
  readonly orphanFiles: string[];
  /** Live volumes past creation with no file. */
  readonly missingFiles: string[];
  /** tgt targets that serve no exported volume (or under another number). */
  readonly orphanTargets: string[];
  /** Exported volumes tgtd does not serve. */
  readonly missingTargets: string[];
  /** CHAP accounts of no live volume. */
  readonly orphanAccounts: string[];
  /** ACL entries for initiators no live attachment holds. */
  readonly orphanAcls: string[];
  /** Target config files of no exported volume. */
  readonly orphanConfigs: string[];
}

export const isClean = (f: AuditFindings): boolean => Object.values(f).every((list) => list.length === 0);

/**
 * Compares one volume host's database rows with what it really holds: files in volumes_path,
 * tgtd's targets, accounts and ACLs, the target config files. Run when nothing is in transit.
 */
export async function auditHost(
  db: { query<T>(sql: string, params?: unknown[]): Promise<T[]> },
  host: string,
  paths: { readonly volumesPath: string; readonly volumesDir: string; readonly secretKey: string },
  tgtd: TgtdFixture,
): Promise<AuditFindings> {
  const live: {
    id: string;
    backend_name: string;
    status: string;
    provider_auth: string | null;
    target_num: number | null;
  }[] = await db.query(
    `SELECT v.id, v.backend_name, v.status, v.provider_auth, t.target_num FROM volumes v
         LEFT JOIN iscsi_targets t ON t.volume_id = v.id WHERE v.host = $1 AND NOT v.deleted`,
    [host],
  );
  const connected = await db.query<{ address: string }>(
    `SELECT DISTINCT a.ip AS address FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id
      WHERE v.host = $1 AND NOT v.deleted AND NOT a.deleted`,
    [host],
  );
  const exported = live.filter((v) => v.status === 'available' || v.status === 'in-use');
  const names = new Set(live.map((v) => v.backend_name));
  const files = readdirSync(paths.volumesPath).filter((f) => !f.startsWith('.'));
  const targets = parseTargets(await tgtd.targets());
  const expectedTargets = new Map(exported.map((v) => [`${IQN_PREFIX}${v.backend_name}`, v.target_num]));
  // the stored secrets are sealed: opened with the stack's key, as the worker opens them
  const box = new SecretBox([paths.secretKey]);
  const users = new Set(
    live.map((v) => chapCredentials(box, { id: v.id, providerAuth: v.provider_auth })?.user).filter(Boolean),
  );
  const accounts = (await tgtd.accounts())
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'Account list:');
  const allowed = new Set(connected.map((c) => c.address));
  return {
    orphanFiles: files.filter((f) => !names.has(f)),
    missingFiles: exported.map((v) => v.backend_name).filter((n) => !files.includes(n)),
    orphanTargets: targets
      .filter((t) => expectedTargets.get(t.iqn) !== t.tid)
      .map((t) => `${t.tid} ${t.iqn}`),
    missingTargets: [...expectedTargets.keys()].filter((iqn) => !targets.some((t) => t.iqn === iqn)),
    orphanAccounts: accounts.filter((a) => !users.has(a)),
    orphanAcls: targets.flatMap((t) => t.acl.filter((a) => !allowed.has(a)).map((a) => `${t.tid} ${a}`)),
    orphanConfigs: readdirSync(paths.volumesDir).filter(
      (f) => !f.startsWith('.') && !exported.some((v) => v.backend_name === f),
    ),
  };
}

/** `tgtadm --op show --mode target` → each target's number, IQN and ACL entries. */
function parseTargets(text: string): { tid: number; iqn: string; acl: string[] }[] {
  const targets: { tid: number; iqn: string; acl: string[] }[] = [];
  let inAcl = false;
  for (const line of text.split('\n')) {
    const target = /^Target (\d+): (\S+)$/.exec(line);
    if (target) {
      targets.push({ tid: Number(target[1]), iqn: target[2] as string, acl: [] });
      inAcl = false;
    } else if (/^\s+ACL information:/.test(line)) inAcl = true;
    else if (inAcl && /^\s{8}\S/.test(line)) targets.at(-1)?.acl.push(line.trim());
    else if (/^\s{4}\S/.test(line)) inAcl = false;
  }
  return targets;
}
