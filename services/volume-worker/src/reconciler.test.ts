import { randomBytes } from 'node:crypto';
import { SecretBox, sealProviderAuth } from '@basalt/db';
import { templatePattern } from '@basalt/naming';
import pino from 'pino';
import { type ReconcilerDeps, VolumeReconciler } from './reconciler';

describe('templatePattern', () => {
  test('the default template: volume- and eight or more hex digits, nothing else', () => {
    const ours = templatePattern('volume-%08x');
    expect(ours.test('volume-0000002a')).toBe(true);
    expect(ours.test('volume-1000000000')).toBe(true);
    for (const name of [
      'volume-2a',
      'volume-0000002a.bak',
      'xvolume-0000002a',
      'volume-0000002G',
      'notes.txt',
    ])
      expect(ours.test(name)).toBe(false);
  });

  test('an id template and literal characters that mean something in a pattern', () => {
    const ours = templatePattern('vol.%s');
    expect(ours.test('vol.0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10')).toBe(true);
    expect(ours.test('volX0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10')).toBe(false);
    expect(ours.test('vol.not-an-id')).toBe(false);
  });
});

/** A host holding a live volume (v1, target 1) and the leftovers a crash can leave, and `moreAccounts`. */
function fixture(openWith?: SecretBox, moreAccounts: string[] = []) {
  const secrets = new SecretBox([`k1:${randomBytes(32).toString('base64')}`]);
  const calls: string[] = [];
  const removed: string[] = [];
  const live = new Map([
    ['iqn.2010-10.org.openstack:volume-00000001', 1],
    ['iqn.2010-10.org.openstack:volume-000000ff', 2],
  ]);
  const deps = {
    driver: {
      inventory: async () => {
        calls.push('backend');
        return [
          { name: 'volume-00000001', marked: true },
          { name: 'volume-000000ff', marked: true },
          { name: 'someone-elses', marked: false },
          { name: 'snapshot-0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10', marked: true },
          { name: 'snapshot-1c9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10', marked: true },
        ];
      },
      deleteVolume: async (name: string) => {
        removed.push(`volume ${name}`);
      },
      deleteSnapshot: async (name: string) => {
        removed.push(`snapshot ${name}`);
      },
    },
    target: {
      inventory: async () => {
        calls.push('tgtd');
        return {
          targets: [
            { tid: 1, iqn: 'iqn.2010-10.org.openstack:volume-00000001', acl: ['10.0.0.2', '10.0.0.9'] },
            { tid: 2, iqn: 'iqn.2010-10.org.openstack:volume-000000ff', acl: [] },
          ],
          accounts: ['UserOfV1xxxxxxxxxxxx', 'UserOfFFxxxxxxxxxxxx', ...moreAccounts],
          configs: [
            { file: 'volume-00000001', user: 'UserOfV1xxxxxxxxxxxx' },
            { file: 'volume-000000ff', user: 'UserOfFFxxxxxxxxxxxx' },
          ],
        };
      },
      liveExports: async () => live,
      removeTarget: async (tid: number) => {
        removed.push(`target ${tid}`);
      },
      removeAccount: async (user: string) => {
        removed.push(`account ${user}`);
      },
      removeConfig: async (file: string) => {
        removed.push(`config ${file}`);
      },
      removeInitiator: async (tid: number, address: string) => {
        removed.push(`acl ${tid} ${address}`);
      },
    },
    volumes: {
      onHost: async () => {
        calls.push('database');
        return [
          {
            id: 'v1',
            backendName: 'volume-00000001',
            status: 'available',
            // sealed, as the worker stores it: the reconciler opens it to know the account is in use
            providerAuth: sealProviderAuth(secrets, 'v1', 'CHAP UserOfV1xxxxxxxxxxxx secret'),
          },
        ];
      },
    },
    snapshots: {
      onHost: async () => [{ id: 's1', backendName: 'snapshot-0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10' }],
    },
    targets: { ofHost: async () => new Map([['v1', 1]]) },
    attachments: { liveAddresses: async () => ['10.0.0.2'] },
    secrets: openWith ?? secrets,
    log: pino({ level: 'silent' }),
  } as unknown as ReconcilerDeps;
  const reconciler = new VolumeReconciler(deps, {
    host: 'host-a',
    iqnPrefix: 'iqn.2010-10.org.openstack:',
    nameTemplate: 'volume-%08x',
  });
  return { reconciler, calls, removed, live };
}

describe('VolumeReconciler', () => {
  test('the host is read before the database, so a volume made meanwhile is never taken for an orphan', async () => {
    const f = fixture();
    await f.reconciler.reconcile(true);
    expect(f.calls).toEqual(['backend', 'tgtd', 'database']);
  });

  test('a dry run finds what a real run removes, and removes nothing; what is not Basalt’s is only reported', async () => {
    const f = fixture();
    const dry = await f.reconciler.reconcile(true);
    expect(f.removed).toEqual([]);
    expect(dry.findings.map((x) => `${x.action} ${x.kind} ${x.name}`)).toEqual([
      'remove volume volume-000000ff',
      'report volume someone-elses',
      // a live snapshot is kept, one no row names is removed
      'remove volume snapshot-1c9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10',
      'remove acl 1 10.0.0.9',
      'remove target 2 iqn.2010-10.org.openstack:volume-000000ff',
      'remove account UserOfFFxxxxxxxxxxxx',
      'remove config volume-000000ff',
    ]);
    const real = await f.reconciler.reconcile(false);
    expect(real.findings).toEqual(dry.findings);
    expect(f.removed).toEqual([
      'volume volume-000000ff',
      'snapshot snapshot-1c9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10',
      'acl 1 10.0.0.9',
      'target 2',
      'account UserOfFFxxxxxxxxxxxx',
      'config volume-000000ff',
    ]);
  });

  test('a live volume whose secret no key opens is reported, and its account kept', async () => {
    const f = fixture(new SecretBox([`k1:${randomBytes(32).toString('base64')}`]));
    const report = await f.reconciler.reconcile(false);
    expect(report.findings).toContainEqual({
      kind: 'volume',
      name: 'volume-00000001',
      action: 'report',
      reason: 'its stored CHAP secret cannot be opened',
    });
    expect(f.removed).not.toContain('account UserOfV1xxxxxxxxxxxx');
    expect(f.removed).toContain('account UserOfFFxxxxxxxxxxxx');
  });

  test('an account no live volume, target or config names (one a delete could not find) is reported, not removed', async () => {
    const f = fixture(undefined, ['LeftOverxxxxxxxxxxxx']);
    const report = await f.reconciler.reconcile(false);
    expect(report.findings).toContainEqual({
      kind: 'account',
      name: 'LeftOverxxxxxxxxxxxx',
      action: 'report',
      reason: 'not made by Basalt',
    });
    expect(f.removed).not.toContain('account LeftOverxxxxxxxxxxxx');
  });

  test('a target number that went to another volume since the listing is left alone', async () => {
    const f = fixture();
    f.live.set('iqn.2010-10.org.openstack:volume-00000100', 2);
    f.live.delete('iqn.2010-10.org.openstack:volume-000000ff');
    await f.reconciler.reconcile(false);
    expect(f.removed).not.toContain('target 2');
  });
});
