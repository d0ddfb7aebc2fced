import type { SnapshotRecord } from '@basalt/db';
import { snapshotView } from './views';

const snapshot = {
  id: 's1',
  volumeId: 'v1',
  volumeSize: 2,
  status: 'available',
  progress: '100%',
  projectId: 'p1',
  userId: 'u1',
  displayName: 'snap',
  displayDescription: null,
  metadata: { a: 'b' },
  createdAt: new Date(0),
  updatedAt: new Date(0),
} as unknown as SnapshotRecord;

const SUMMARY = [
  'created_at',
  'description',
  'id',
  'metadata',
  'name',
  'size',
  'status',
  'updated_at',
  'volume_id',
];

describe("snapshot views: Cinder's fields, no more", () => {
  test('the plain list shows the summary at any version', () => {
    expect(Object.keys(snapshotView(snapshot, undefined)).sort()).toEqual(SUMMARY);
  });

  test('show and the detailed list add the extended attributes; 3.14 the group snapshot, 3.41 the user', () => {
    const at = (version: string) =>
      Object.keys(snapshotView(snapshot, { isAdmin: false, version }, true)).sort();
    const extended = [
      'os-extended-snapshot-attributes:progress',
      'os-extended-snapshot-attributes:project_id',
    ];
    expect(at('3.0')).toEqual([...SUMMARY, ...extended].sort());
    expect(at('3.14')).toEqual([...SUMMARY, ...extended, 'group_snapshot_id'].sort());
    expect(at('3.41')).toEqual([...SUMMARY, ...extended, 'group_snapshot_id', 'user_id'].sort());
    expect(snapshotView(snapshot, { isAdmin: false, version: '3.0' }, true)).toMatchObject({
      size: 2,
      'os-extended-snapshot-attributes:progress': '100%',
      'os-extended-snapshot-attributes:project_id': 'p1',
    });
  });
});
