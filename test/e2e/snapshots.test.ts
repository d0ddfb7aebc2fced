import { execFile } from 'node:child_process';
import { openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request, waitForResource, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const MARK_AT = 5 * 1024 * 1024;

describe('snapshots and volumes from sources: API → scheduler → worker → file backend', () => {
  const stack = new VolumeStack();
  const token = 'tester:snapproj';
  let api = '';

  beforeAll(async () => {
    await stack.start();
    api = `${stack.volumeUrl}/v3/snapproj`;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const post = (path: string, body: unknown) => request(`${api}/${path}`, { method: 'POST', token, body });
  const fileOf = (name: string) => join(stack.volumesPath, name);
  /** The backing file of the volume, found by its size's owner: the file backend names it volume-%08x. */
  const newestVolumeFile = () =>
    readdirSync(stack.volumesPath)
      .filter((f) => f.startsWith('volume-'))
      .sort()
      .at(-1) as string;
  const mark = (file: string, text: string) =>
    writeSync(openSync(file, 'r+'), Buffer.from(text), 0, text.length, MARK_AT);
  const markOf = (file: string, length: number) => {
    const bytes = Buffer.alloc(length);
    readSync(openSync(file, 'r'), bytes, 0, length, MARK_AT);
    return bytes.toString();
  };
  const volume = async (body: Record<string, unknown>) => {
    const created = await post('volumes', { volume: body });
    expect(created.status).toBe(202);
    return waitForVolume(api, token, created.body.volume.id, ['available']);
  };

  test('snapshot, a volume from it, a clone, then a cascade delete', async () => {
    const origin = await volume({ size: 1, name: 'origin' });
    const originFile = fileOf(newestVolumeFile());
    mark(originFile, 'FIRST');

    const created = await post('snapshots', {
      snapshot: { volume_id: origin.id, name: 'snap', metadata: { a: 'b' } },
    });
    expect(created.status).toBe(202);
    expect(Object.keys(created.body.snapshot).sort()).toEqual(
      [
        'created_at',
        'description',
        'id',
        'metadata',
        'name',
        'size',
        'status',
        'updated_at',
        'volume_id',
      ].sort(),
    );
    const snapshot = await waitForResource(api, token, 'snapshot', created.body.snapshot.id, ['available']);
    expect(snapshot).toMatchObject({
      size: 1,
      volume_id: origin.id,
      'os-extended-snapshot-attributes:progress': '100%',
      'os-extended-snapshot-attributes:project_id': 'snapproj',
    });
    expect(markOf(fileOf(`snapshot-${snapshot.id}`), 5)).toBe('FIRST');
    mark(originFile, 'AFTER');

    // a volume from the snapshot is never smaller than it, and has the snapshot's data
    const small = await post('volumes', { volume: { size: 0, snapshot_id: snapshot.id } });
    expect(small.status).toBe(400);
    const fromSnapshot = await volume({ size: 2, snapshot_id: snapshot.id });
    expect(fromSnapshot).toMatchObject({ snapshot_id: snapshot.id, source_volid: null, size: 2 });
    const restoredFile = fileOf(newestVolumeFile());
    expect(statSync(restoredFile).size).toBe(2 * GiB);
    expect(markOf(restoredFile, 5)).toBe('FIRST');

    // a clone takes its source's size when none is given, and its data as it is now
    const clone = await volume({ source_volid: origin.id });
    expect(clone).toMatchObject({ source_volid: origin.id, snapshot_id: null, size: 1 });
    expect(markOf(fileOf(newestVolumeFile()), 5)).toBe('AFTER');

    // a volume with snapshots can still grow
    const extended = await post(`volumes/${origin.id}/action`, { 'os-extend': { new_size: 2 } });
    expect(extended.status).toBe(202);
    await waitForVolume(api, token, origin.id, ['available']);

    const refused = await request(`${api}/volumes/${origin.id}`, { method: 'DELETE', token });
    expect(refused.status).toBe(400);
    expect(refused.body.badRequest.message).toContain('dependent snapshots');
    const cascade = await request(`${api}/volumes/${origin.id}?cascade=true`, { method: 'DELETE', token });
    expect(cascade.status).toBe(202);
    await waitForVolume(api, token, origin.id, ['deleted']);
    await waitForResource(api, token, 'snapshot', snapshot.id, ['deleted']);
    expect(readdirSync(stack.volumesPath)).not.toContain(`snapshot-${snapshot.id}`);
    // the volume made from the snapshot does not depend on it
    expect((await request(`${api}/volumes/${fromSnapshot.id}`, { token })).body.volume.status).toBe(
      'available',
    );
  }, 120_000);

  test('the snapshots quota refuses with 413; a volume that is not available is refused', async () => {
    const quota = await request(`${api}/os-quota-sets/snapproj`, {
      method: 'PUT',
      token,
      body: { quota_set: { snapshots: 1 } },
    });
    expect(quota.status).toBe(200);
    const v = await volume({ size: 1, name: 'quota' });
    const first = await post('snapshots', { snapshot: { volume_id: v.id } });
    expect(first.status).toBe(202);
    const second = await post('snapshots', { snapshot: { volume_id: v.id } });
    expect(second.status).toBe(413);
    expect(second.body.overLimit.message).toContain('SnapshotLimitExceeded');
    const usage = await request(`${api}/os-quota-sets/snapproj?usage=true`, { token });
    expect(usage.body.quota_set.snapshots).toMatchObject({ limit: 1, in_use: 1 });
    await request(`${api}/os-quota-sets/snapproj`, { method: 'DELETE', token });

    expect((await post(`volumes/${v.id}/action`, { 'os-reserve': {} })).status).toBe(202);
    const unforced = await post('snapshots', { snapshot: { volume_id: v.id } });
    expect(unforced.status).toBe(400);
  }, 60_000);

  test('python-cinderclient: snapshot-create, snapshot-list, snapshot-show, snapshot-delete', async () => {
    const cinder = async (...args: string[]) =>
      (
        await run(
          '/usr/bin/cinder',
          [
            '--os-auth-type',
            'noauth',
            '--os-user-id',
            'tester',
            '--os-project-id',
            'snapproj',
            '--os-endpoint',
            `${stack.volumeUrl}/v3`,
            ...args,
          ],
          { timeout: 60_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
        )
      ).stdout;
    const v = await volume({ size: 1, name: 'cli' });
    const created = await cinder('snapshot-create', '--name', 'clisnap', v.id);
    const id = /\| id +\| (\S+) +\|/.exec(created)?.[1] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await waitForResource(api, token, 'snapshot', id, ['available']);
    expect(await cinder('snapshot-list')).toMatch(
      new RegExp(`\\| ${id} \\| ${v.id} \\| available +\\| clisnap +\\| 1 `),
    );
    expect(await cinder('snapshot-show', id)).toMatch(/\| status +\| available +\|/);
    await cinder('snapshot-delete', id);
    await waitForResource(api, token, 'snapshot', id, ['deleted']);
  }, 120_000);
});
