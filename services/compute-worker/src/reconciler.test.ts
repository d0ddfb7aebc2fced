import pino from 'pino';
import { ComputeReconciler, type ComputeReconcilerDeps } from './reconciler';
import { DOMAIN_MARKER_NS } from './virt/domain-xml';

const V_MAPPED = '11111111-1111-4111-8111-111111111111';
const V_ORPHAN = '22222222-2222-4222-8222-222222222222';
const V_FOREIGN = '33333333-3333-4333-8333-333333333333';
const V_DELETED = '44444444-4444-4444-8444-444444444444';
const V_IN_A_DOMAIN = '55555555-5555-4555-8555-555555555555';
const marked = `<domain><metadata><basalt:instance xmlns:basalt='${DOMAIN_MARKER_NS}'/></metadata></domain>`;

/** A host with one live instance (seq 1, a volume mapped) and what crashes and neighbours leave. */
function fixture() {
  const calls: string[] = [];
  const removed: string[] = [];
  const deps = {
    hypervisor: {
      listDomains: async () => {
        calls.push('domains');
        return ['inst-00000001', 'inst-00000002', 'inst-00000003', 'inst-foreign', 'other-00000009'];
      },
      definition: async (name: string) =>
        name === 'inst-00000003'
          ? '<domain/>'
          : name === 'other-00000009'
            ? `<domain><disk><auth username='u'><secret type='iscsi' usage='basalt-volume-${V_IN_A_DOMAIN}'/></auth></disk></domain>`
            : marked,
      destroy: async (name: string) => {
        removed.push(`domain ${name}`);
      },
    },
    secrets: {
      usages: async () => {
        calls.push('secrets');
        return [
          `basalt-volume-${V_MAPPED}`,
          `basalt-volume-${V_ORPHAN}`,
          `basalt-volume-${V_FOREIGN}`,
          `basalt-volume-${V_DELETED}`,
          `basalt-volume-${V_IN_A_DOMAIN}`,
          'else',
        ];
      },
      remove: async (usage: string) => {
        removed.push(`secret ${usage}`);
      },
    },
    storage: {
      folders: async () => {
        calls.push('folders');
        return [
          { name: 'inst-00000001', marked: true },
          { name: 'inst-00000004', marked: true },
          { name: 'inst-00000005', marked: false },
        ];
      },
      removeInstance: async (name: string) => {
        removed.push(`folder ${name}`);
      },
    },
    instances: {
      onHost: async () => {
        calls.push('database');
        return [{ id: 'i1', seq: 1, vmState: 'active', taskState: null }];
      },
    },
    mappings: { forInstance: async () => [{ volumeId: V_MAPPED }] },
    volumes: {
      known: async (id: string) =>
        id === V_FOREIGN ? undefined : { deleted: id === V_DELETED || id === V_IN_A_DOMAIN },
    },
    log: pino({ level: 'silent' }),
  } as unknown as ComputeReconcilerDeps;
  const reconciler = new ComputeReconciler(deps, { host: 'h1', instanceNameTemplate: 'inst-%08x' });
  return { reconciler, calls, removed };
}

describe('ComputeReconciler', () => {
  test('the host is read before the database', async () => {
    const { reconciler, calls } = fixture();
    await reconciler.reconcile(true);
    expect(calls).toEqual(['domains', 'secrets', 'folders', 'database']);
  });

  test('removes its own orphans, reports the rest, leaves what rows need', async () => {
    const { reconciler, removed } = fixture();
    const report = await reconciler.reconcile(false);
    expect(report.findings.map((f) => [f.kind, f.name, f.action])).toEqual([
      ['domain', 'inst-00000002', 'remove'],
      ['domain', 'inst-00000003', 'report'],
      ['domain', 'inst-foreign', 'report'],
      ['secret', `basalt-volume-${V_ORPHAN}`, 'remove'],
      ['secret', `basalt-volume-${V_FOREIGN}`, 'report'],
      ['secret', `basalt-volume-${V_DELETED}`, 'remove'],
      ['secret', `basalt-volume-${V_IN_A_DOMAIN}`, 'report'],
      ['folder', 'inst-00000004', 'remove'],
      ['folder', 'inst-00000005', 'report'],
    ]);
    expect(removed).toEqual([
      'domain inst-00000002',
      `secret basalt-volume-${V_ORPHAN}`,
      `secret basalt-volume-${V_DELETED}`,
      'folder inst-00000004',
    ]);
  });

  test('a dry run changes nothing and says the same', async () => {
    const { reconciler, removed } = fixture();
    const report = await reconciler.reconcile(true);
    expect(report).toMatchObject({ host: 'h1', dry_run: true });
    expect(report.findings.filter((f) => f.action === 'remove')).toHaveLength(4);
    expect(removed).toEqual([]);
  });
});
