import { adminContext } from '@basalt/context';
import type { Move, QuotaLimits, SnapshotRecord, SnapshotStatus } from '@basalt/db';
import { BasaltError, NotFoundError } from '@basalt/errors';
import { RpcConnectionError } from '@basalt/rpc';
import pino from 'pino';
import { SnapshotApi } from './snapshot-api';

const member = adminContext({ isAdmin: false, projectId: 'p1', userId: 'u1' });
const admin = adminContext({ isAdmin: true, projectId: 'p1', userId: 'admin' });

const row = (over: Partial<SnapshotRecord> = {}): SnapshotRecord =>
  ({
    id: 's1',
    volumeId: 'v1',
    projectId: 'p1',
    status: 'available',
    host: 'host-a',
    ...over,
  }) as SnapshotRecord;

/** The snapshot API over in-memory snapshots that move as the SQL moves them, with every step recorded. */
function fixture(initial: SnapshotRecord[] = []) {
  const rows = new Map(initial.map((s) => [s.id, s]));
  const done: string[] = [];
  const unreachable: { error?: Error } = {};
  const move = (id: string, m: Move<SnapshotStatus>, changes: { statusReason?: string | null } = {}) => {
    const s = rows.get(id);
    if (!s || !m.from.includes(s.status)) return undefined;
    const next = { ...s, status: m.to } as SnapshotRecord;
    rows.set(id, next);
    done.push(`${m.to}${changes.statusReason ? `: ${changes.statusReason}` : ''}`);
    return next;
  };
  const api = new SnapshotApi(
    {
      volumes: {
        get: async (_ctx: unknown, id: string) => {
          if (id !== 'v1') throw new NotFoundError(`Volume ${id} could not be found.`);
          return { id: 'v1' };
        },
      },
      snapshots: {
        find: async (id: string) => rows.get(id),
        createWithinQuota: async (input: { volumeStatuses: readonly string[] }) => {
          const s = row({ id: 'new', status: 'creating' });
          rows.set(s.id, s);
          done.push(`inserted for a volume ${input.volumeStatuses.join('/')}`);
          return s;
        },
        transition: async (id: string, m: Move<SnapshotStatus>, c?: { statusReason?: string }) =>
          move(id, m, c),
        transitionOrThrow: async (id: string, m: Move<SnapshotStatus>, c?: { statusReason?: string }) => {
          const moved = move(id, m, c);
          if (!moved) throw new BasaltError(`Invalid snapshot: status is ${rows.get(id)?.status}`);
          return moved;
        },
      },
      volumeRpc: {
        create_snapshot: async (_ctx: unknown, host: string, args: { snapshot_id: string }) => {
          if (unreachable.error) throw unreachable.error;
          done.push(`volume.${host}.create_snapshot ${args.snapshot_id}`);
        },
        delete_snapshot: async (_ctx: unknown, host: string, args: { snapshot_id: string }) => {
          if (unreachable.error) throw unreachable.error;
          done.push(`volume.${host}.delete_snapshot ${args.snapshot_id}`);
        },
      },
      log: pino({ level: 'silent' }),
    } as unknown as ConstructorParameters<typeof SnapshotApi>[0],
    { quotaDefaults: {} as QuotaLimits },
  );
  return { api, done, rows, unreachable };
}

const request = { volumeId: 'v1', name: 's', description: null, metadata: {}, force: false };

describe('SnapshotApi', () => {
  test("create inserts the snapshot, then casts to the volume's host; force widens the statuses", async () => {
    const f = fixture();
    await f.api.create(member, request);
    await f.api.create(member, { ...request, force: true });
    expect(f.done).toEqual([
      'inserted for a volume available',
      'volume.host-a.create_snapshot new',
      'inserted for a volume available/in-use',
      'volume.host-a.create_snapshot new',
    ]);
  });

  test('a create that cannot be sent leaves error with the reason; one the broker did not take waits for the sweep', async () => {
    const f = fixture();
    f.unreachable.error = new BasaltError('no route');
    await expect(f.api.create(member, request)).rejects.toThrow('no route');
    expect(f.done.at(-1)).toBe('error: could not reach host-a: no route');
    const g = fixture();
    g.unreachable.error = new RpcConnectionError('broker connection closed');
    await expect(g.api.create(member, request)).resolves.toMatchObject({ status: 'creating' });
    expect(g.rows.get('new')?.status).toBe('creating');
  });

  test("another project's snapshot does not exist for a member; an admin sees it", async () => {
    const f = fixture([row({ projectId: 'p2' })]);
    await expect(f.api.get(member, 's1')).rejects.toThrow('Snapshot s1 could not be found.');
    await expect(f.api.get(admin, 's1')).resolves.toMatchObject({ id: 's1' });
  });

  test('delete moves to deleting and tells the host; force (who may is the policy’s) takes a creating snapshot', async () => {
    const f = fixture([row(), row({ id: 's2', status: 'creating' })]);
    await f.api.delete(member, 's1');
    await expect(f.api.delete(member, 's2')).rejects.toThrow('Invalid snapshot');
    await f.api.delete(admin, 's2', true);
    expect(f.done).toEqual([
      'deleting',
      'volume.host-a.delete_snapshot s1',
      'deleting',
      'volume.host-a.delete_snapshot s2',
    ]);
  });

  test("os-update_snapshot_status follows Cinder's map from the status the snapshot is in", async () => {
    const f = fixture([row({ status: 'creating' }), row({ id: 's2', status: 'available' })]);
    await expect(f.api.updateStatus(member, 's1', 'error_deleting')).rejects.toThrow(
      'Provided snapshot status error_deleting not allowed for snapshot with status creating.',
    );
    await f.api.updateStatus(member, 's1', 'available', '100%');
    expect(f.rows.get('s1')?.status).toBe('available');
    await expect(f.api.updateStatus(member, 's2', 'error')).rejects.toThrow('not allowed');
  });

  test("os-reset_status: who may is the policy's; the snapshot must be the caller's, the status a live one", async () => {
    const f = fixture([row({ projectId: 'p2' }), row({ id: 's2' })]);
    await expect(f.api.resetStatus(member, 's1', 'error')).rejects.toThrow('Snapshot s1 could not be found.');
    await expect(f.api.resetStatus(admin, 's1', 'deleted')).rejects.toThrow("Invalid status 'deleted'");
    await f.api.resetStatus(admin, 's1', 'error');
    expect(f.rows.get('s1')?.status).toBe('error');
    // an operator whose policy lets members reset their own snapshots is obeyed
    await f.api.resetStatus(member, 's2', 'error');
    expect(f.rows.get('s2')?.status).toBe('error');
  });
});
