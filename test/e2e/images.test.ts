import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { testImage } from '../support/guest';
import { request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** The store's cap here: the guest image fits, a whole 1 GiB volume in raw does not. */
const SIZE_CAP = 72 * MiB;

/** MD5 and SHA-512 of a file's first `length` bytes (all of it without). */
async function digests(path: string, length?: number): Promise<{ md5: string; sha512: string }> {
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  const stream = createReadStream(path, length === undefined ? {} : { end: length - 1 });
  for await (const chunk of stream) {
    md5.update(chunk as Buffer);
    sha512.update(chunk as Buffer);
  }
  return { md5: md5.digest('hex'), sha512: sha512.digest('hex') };
}

/**
 * The image API's create, upload, patch, deactivate and delete, and the volume API's images: a
 * volume made from the test guest image holds its bytes, a volume copied into an image gives the
 * volume's bytes back, bad images are refused at the API as Cinder refuses them, a download that
 * fails leaves the volume in error with a user message, and projects never reach each other's
 * images or uploads.
 */
describe('images: the image API, volumes from images and volumes into images', () => {
  const stack = new VolumeStack({
    authStrategy: 'builtin',
    extraEnv: { BASALT__GLANCE_STORE__IMAGE_SIZE_CAP: String(SIZE_CAP) },
  });
  const tokens: Record<string, string> = {};
  const projects: Record<string, string> = {};
  let guestImage = '';

  async function login(user: string, password: string, project: string): Promise<void> {
    const res = await request(`${stack.identityUrl}/v3/auth/tokens`, {
      method: 'POST',
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, password } } },
          scope: { project: { name: project } },
        },
      },
    });
    expect(res.status).toBe(201);
    tokens[user] = res.headers.get('x-subject-token') as string;
    projects[user] = res.body.token.project.id;
  }

  beforeAll(async () => {
    guestImage = await testImage();
    await stack.start();
    await login('admin', 'adminpass', 'admin');
    await login('alice', 'alicepass', 'demo');
    await login('bob', 'bobpass', 'other');
    await login('carol', 'carolpass', 'demo');
  }, 300_000);
  afterAll(() => stack.stop(), 60_000);

  const images = (user: string, path = '', init: Parameters<typeof request>[1] = {}) =>
    request(`${stack.imageUrl}/v2/images${path}`, { token: tokens[user] as string, ...init });
  const volumes = (user: string) => `${stack.volumeUrl}/v3/${projects[user]}`;
  const createImage = async (user: string, body: Record<string, unknown>) => {
    const res = await images(user, '', { method: 'POST', body: { container_format: 'bare', ...body } });
    expect(res.status).toBe(201);
    return res.body;
  };
  const upload = (user: string, id: string, data: Buffer | Readable, type = 'application/octet-stream') =>
    fetch(`${stack.imageUrl}/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'X-Auth-Token': tokens[user] as string, 'Content-Type': type },
      body: data instanceof Readable ? (Readable.toWeb(data) as ReadableStream) : data,
      duplex: 'half',
    } as RequestInit);
  const waitForImage = async (user: string, id: string, status: string) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await images(user, `/${id}`);
      if (res.status === 200 && res.body.status === status) return res.body;
      if (Date.now() > deadline) throw new Error(`image ${id} never ${status}: ${JSON.stringify(res.body)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const waitForImageGone = async (user: string, id: string) => {
    const deadline = Date.now() + 60_000;
    while ((await images(user, `/${id}`)).status !== 404) {
      if (Date.now() > deadline) throw new Error(`image ${id} was never deleted`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const createVolume = (user: string, volume: Record<string, unknown>) =>
    request(`${volumes(user)}/volumes`, { method: 'POST', token: tokens[user] as string, body: { volume } });
  const action = (user: string, id: string, body: unknown, version = '3.1') =>
    request(`${volumes(user)}/volumes/${id}/action`, {
      method: 'POST',
      token: tokens[user] as string,
      body,
      headers: { 'OpenStack-API-Version': `volume ${version}` },
    });
  const backingFile = async (volumeId: string) => {
    const [row] = await stack.query<{ backend_name: string }>(
      'SELECT backend_name FROM volumes WHERE id = $1',
      [volumeId],
    );
    return join(stack.volumesPath, row?.backend_name as string);
  };

  test('an image is created, uploaded as a stream with its checksums, patched and deleted', async () => {
    const image = await createImage('alice', {
      name: 'guest',
      disk_format: 'raw',
      visibility: 'private',
      purpose: 'test',
    });
    expect(image).toMatchObject({
      status: 'queued',
      owner: projects.alice,
      visibility: 'private',
      purpose: 'test',
    });
    // the data must be sent as octet-stream
    expect((await upload('alice', image.id, Buffer.from('x'), 'application/json')).status).toBe(415);
    expect(
      (await upload('alice', image.id, createReadStream(guestImage) as unknown as Readable)).status,
    ).toBe(204);
    const expected = await digests(guestImage);
    const active = await images('alice', `/${image.id}`);
    expect(active.body).toMatchObject({
      status: 'active',
      size: 64 * MiB,
      virtual_size: 64 * MiB,
      checksum: expected.md5,
      os_hash_algo: 'sha512',
      os_hash_value: expected.sha512,
    });
    // one upload per image
    expect((await upload('alice', image.id, Buffer.from('again'))).status).toBe(409);
    const file = await fetch(`${stack.imageUrl}/v2/images/${image.id}/file`, {
      headers: { 'X-Auth-Token': tokens.alice as string },
    });
    expect(
      createHash('md5')
        .update(Buffer.from(await file.arrayBuffer()))
        .digest('hex'),
    ).toBe(expected.md5);

    const patch = (user: string, ops: unknown, type = 'application/openstack-images-v2.1-json-patch') =>
      images(user, `/${image.id}`, {
        method: 'PATCH',
        rawBody: JSON.stringify(ops),
        headers: { 'Content-Type': type },
      });
    const renamed = await patch('alice', [
      { op: 'replace', path: '/name', value: 'renamed' },
      { op: 'add', path: '/min_disk', value: 1 },
      { op: 'remove', path: '/purpose' },
    ]);
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'renamed', min_disk: 1 });
    expect(renamed.body).not.toHaveProperty('purpose');
    expect(
      (await patch('alice', [{ op: 'replace', path: '/name', value: 'x' }], 'application/json')).status,
    ).toBe(415);
    expect((await patch('alice', [{ op: 'replace', path: '/status', value: 'active' }])).status).toBe(403);
    // the project's reader sees the image and may not change it; another project sees nothing
    expect((await images('carol', `/${image.id}`)).status).toBe(200);
    expect((await patch('carol', [{ op: 'replace', path: '/name', value: 'x' }])).status).toBe(403);
    expect((await images('bob', `/${image.id}`)).status).toBe(404);
    expect((await patch('bob', [{ op: 'replace', path: '/name', value: 'x' }])).status).toBe(404);
    expect((await images('bob', `/${image.id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await images('bob')).body.images.map((i: { id: string }) => i.id)).not.toContain(image.id);
    expect(
      (await images('bob', '', { method: 'POST', body: { name: 'p', visibility: 'public' } })).status,
    ).toBe(403);

    expect((await images('alice', `/${image.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await images('alice', `/${image.id}`)).status).toBe(404);
    // its data is gone from the store, and a deleted image takes no upload
    await expect(readFile(join(stack.imagesPath, image.id))).rejects.toThrow(/ENOENT/);
    expect((await upload('alice', image.id, Buffer.from('late'))).status).toBe(404);
  });

  test('an upload over the store cap is refused as it arrives, and the image may be uploaded again', async () => {
    const image = await createImage('alice', { name: 'too-big', disk_format: 'raw' });
    expect((await upload('alice', image.id, Buffer.alloc(SIZE_CAP + MiB))).status).toBe(413);
    expect((await images('alice', `/${image.id}`)).body.status).toBe('queued');
    expect((await upload('alice', image.id, Buffer.from('small'))).status).toBe(204);
    expect((await images('alice', `/${image.id}`)).body).toMatchObject({ status: 'active', size: 5 });
  }, 120_000);

  test('tags are kept from create, set by patch, added and removed one by one, and filter the list', async () => {
    const image = await createImage('alice', { name: 'tagged', tags: ['x86', 'base', 'x86'] });
    expect(image.tags).toEqual(['x86', 'base']);
    const other = await createImage('alice', { name: 'other', tags: ['x86'] });
    const tag = (user: string, id: string, value: string, method: 'PUT' | 'DELETE') =>
      images(user, `/${id}/tags/${encodeURIComponent(value)}`, { method });
    const listed = async (query: string) =>
      (await images('alice', query)).body.images.map((i: { id: string }) => i.id);

    expect((await tag('alice', image.id, 'new tag', 'PUT')).status).toBe(204);
    // again is no change
    expect((await tag('alice', image.id, 'new tag', 'PUT')).status).toBe(204);
    expect((await images('alice', `/${image.id}`)).body.tags).toEqual(['x86', 'base', 'new tag']);
    expect(await listed('?tag=x86')).toEqual(expect.arrayContaining([image.id, other.id]));
    const both = await listed('?tag=x86&tag=new%20tag');
    expect(both).toContain(image.id);
    expect(both).not.toContain(other.id);
    expect(await listed('?tag=absent')).toEqual([]);

    expect((await tag('alice', image.id, 'base', 'DELETE')).status).toBe(204);
    const missing = await tag('alice', image.id, 'base', 'DELETE');
    expect(missing.status).toBe(404);
    expect((await images('alice', `/${image.id}`)).body.tags).toEqual(['x86', 'new tag']);
    const long = await tag('alice', image.id, 'x'.repeat(256), 'PUT');
    expect(long.status).toBe(400);
    expect(JSON.stringify(long.body)).toContain("Provided object does not match schema 'image'");

    const patch = (ops: unknown) =>
      images('alice', `/${image.id}`, {
        method: 'PATCH',
        rawBody: JSON.stringify(ops),
        headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
      });
    const replaced = await patch([{ op: 'replace', path: '/tags', value: ['only'] }]);
    expect(replaced.status).toBe(200);
    expect(replaced.body.tags).toEqual(['only']);
    expect((await patch([{ op: 'remove', path: '/tags' }])).status).toBe(403);
    // up to Glance's default image_tag_quota, not one more
    const full = Array.from({ length: 128 }, (_, n) => `t${n}`);
    expect((await patch([{ op: 'add', path: '/tags', value: full }])).body.tags).toHaveLength(128);
    const over = await tag('alice', image.id, 'one-more', 'PUT');
    expect(over.status).toBe(413);
    expect(JSON.stringify(over.body)).toContain('Attempted: 129, Maximum: 128');
    expect((await patch([{ op: 'add', path: '/tags', value: [...full, 'one-more'] }])).status).toBe(413);
    expect((await images('alice', `/${image.id}`)).body.tags).toHaveLength(128);

    // the project's reader may not tag, another project does not see the image
    expect((await tag('carol', image.id, 'r', 'PUT')).status).toBe(403);
    expect((await tag('carol', image.id, 't0', 'DELETE')).status).toBe(403);
    expect((await tag('bob', image.id, 'b', 'PUT')).status).toBe(404);
    expect((await tag('bob', image.id, 't0', 'DELETE')).status).toBe(404);
    expect((await images('bob', '?tag=t0')).body.images).toEqual([]);
  });

  test("Glance's image and images schemas are served", async () => {
    const schema = (name: string) =>
      request(`${stack.imageUrl}/v2/schemas/${name}`, { token: tokens.carol as string });
    const image = await schema('image');
    expect(image.status).toBe(200);
    expect(image.body).toMatchObject({ name: 'image', additionalProperties: { type: 'string' } });
    expect(image.body.properties.tags.items).toEqual({ type: 'string', maxLength: 255 });
    const list = await schema('images');
    expect(list.status).toBe(200);
    expect(list.body.properties.images.items).toEqual(image.body);
    expect((await request(`${stack.imageUrl}/v2/schemas/image`)).status).toBe(401);
  });

  test('a volume made from the guest image holds its bytes, and copied into an image gives them back', async () => {
    const image = await createImage('alice', {
      name: 'basalt-guest',
      disk_format: 'raw',
      visibility: 'private',
      os_distro: 'busybox',
    });
    expect(
      (await upload('alice', image.id, createReadStream(guestImage) as unknown as Readable)).status,
    ).toBe(204);
    const created = await createVolume('alice', { size: 1, imageRef: image.id, name: 'from-image' });
    expect(created.status).toBe(202);
    const volume = await waitForVolume(
      volumes('alice'),
      tokens.alice as string,
      created.body.volume.id,
      ['available'],
      60_000,
    );
    const guest = await digests(guestImage);
    expect(volume.bootable).toBe('true');
    expect(volume.volume_image_metadata).toEqual({
      image_id: image.id,
      image_name: 'basalt-guest',
      checksum: guest.md5,
      container_format: 'bare',
      disk_format: 'raw',
      min_disk: '0',
      min_ram: '0',
      size: String(64 * MiB),
      os_distro: 'busybox',
    });
    const file = await backingFile(volume.id);
    expect(await digests(file, 64 * MiB)).toEqual(guest);

    // Cinder's volume image metadata actions
    const set = await action('alice', volume.id, { 'os-set_image_metadata': { metadata: { extra: 'x' } } });
    expect(set.status).toBe(200);
    expect(set.body.metadata).toMatchObject({ image_id: image.id, extra: 'x' });
    expect((await action('alice', volume.id, { 'os-unset_image_metadata': { key: 'extra' } })).status).toBe(
      200,
    );
    expect((await action('alice', volume.id, { 'os-unset_image_metadata': { key: 'extra' } })).status).toBe(
      404,
    );
    const shown = await action('alice', volume.id, { 'os-show_image_metadata': {} });
    expect(shown.body.metadata).not.toHaveProperty('extra');

    // raw, the whole volume is more than the store takes: the copy fails, the volume is available
    // again with a user message, and the image it was going into is gone
    const uploaded = await action('alice', volume.id, {
      'os-volume_upload_image': { image_name: 'from-volume', disk_format: 'raw', container_format: 'bare' },
    });
    expect(uploaded.status).toBe(202);
    const answer = uploaded.body['os-volume_upload_image'];
    expect(Object.keys(answer).sort()).toEqual(
      [
        'container_format',
        'disk_format',
        'display_description',
        'id',
        'image_id',
        'image_name',
        'protected',
        'size',
        'status',
        'updated_at',
        'visibility',
        'volume_type',
      ].sort(),
    );
    expect(answer).toMatchObject({
      id: volume.id,
      status: 'uploading',
      image_name: 'from-volume',
      disk_format: 'raw',
      visibility: 'private',
      protected: false,
      volume_type: { name: '__DEFAULT__' },
    });
    // a volume being uploaded takes no second upload
    expect(
      (await action('alice', volume.id, { 'os-volume_upload_image': { image_name: 'twice' } })).status,
    ).toBe(400);
    await waitForVolume(volumes('alice'), tokens.alice as string, volume.id, ['available'], 60_000);
    await waitForImageGone('alice', answer.image_id);
    const messages = await request(`${volumes('alice')}/messages`, {
      token: tokens.alice as string,
      headers: { 'OpenStack-API-Version': 'volume 3.3' },
    });
    // the image API refuses the data as it arrives: a 413, or the connection closed under the upload
    expect(
      messages.body.messages.find((m: { resource_uuid: string }) => m.resource_uuid === volume.id)
        ?.user_message,
    ).toMatch(/^copy volume to image: copy volume to image failed: .*(413|cannot be reached)/);

    // as qcow2 it fits: the image is the volume converted, with the volume's image properties
    const asQcow2 = await action('alice', volume.id, {
      'os-volume_upload_image': { image_name: 'from-volume-qcow2', disk_format: 'qcow2' },
    });
    expect(asQcow2.status).toBe(202);
    const copy = await waitForImage('alice', asQcow2.body['os-volume_upload_image'].image_id, 'active');
    expect(copy).toMatchObject({ disk_format: 'qcow2', virtual_size: 1024 * MiB, owner: projects.alice });
    expect(copy.os_distro).toBe('busybox');
    await waitForVolume(volumes('alice'), tokens.alice as string, volume.id, ['available'], 60_000);
    const data = await fetch(`${stack.imageUrl}/v2/images/${copy.id}/file`, {
      headers: { 'X-Auth-Token': tokens.alice as string },
    });
    const qcow2 = join(stack.imagesPath, '..', 'copy.qcow2');
    const raw = join(stack.imagesPath, '..', 'copy.raw');
    await writeFile(qcow2, Buffer.from(await data.arrayBuffer()));
    expect((await digests(qcow2)).md5).toBe(copy.checksum);
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);
    expect(await digests(raw)).toEqual(await digests(file));
  }, 240_000);

  test('bad images are refused at the API as Cinder refuses them, not as error volumes', async () => {
    const refused = async (volume: Record<string, unknown>, message: RegExp) => {
      const res = await createVolume('alice', volume);
      expect(res.status).toBe(400);
      expect(res.body.badRequest.message).toMatch(message);
    };
    await refused({ size: 1, imageRef: '6f2e5e0e-5b7a-4a44-9a79-2b0f3f0f0f0f' }, /Invalid image identifier/);
    await refused({ size: 1, imageRef: 'no-such-image' }, /Invalid image identifier/);
    const queued = await createImage('alice', { name: 'never-uploaded', disk_format: 'raw' });
    await refused({ size: 1, imageRef: queued.id }, /is not active/);
    const needsTwo = await createImage('alice', { name: 'min-disk', disk_format: 'raw', min_disk: 2 });
    expect((await upload('alice', needsTwo.id, Buffer.alloc(1024))).status).toBe(204);
    await refused({ size: 1, imageRef: needsTwo.id }, /cannot be smaller than the image minDisk size 2GB/);
    // an image larger than the volume: a qcow2 file of a few hundred kilobytes whose disk is 2 GiB
    const large = join(stack.imagesPath, '..', 'large.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', large, '2G']);
    const big = await createImage('alice', { name: 'large', disk_format: 'qcow2' });
    expect((await upload('alice', big.id, await readFile(large))).status).toBe(204);
    await refused(
      { size: 1, imageRef: big.id },
      /virtual size is 2GB and doesn't fit in a volume of size 1GB/,
    );
    // deactivated, it is refused; reactivated, it is taken
    const small = await createImage('alice', { name: 'deactivated', disk_format: 'raw' });
    expect((await upload('alice', small.id, Buffer.alloc(4096, 1))).status).toBe(204);
    expect((await images('alice', `/${small.id}/actions/deactivate`, { method: 'POST' })).status).toBe(204);
    await refused({ size: 1, imageRef: small.id }, /is not active/);
    expect((await images('alice', `/${small.id}/actions/reactivate`, { method: 'POST' })).status).toBe(204);
    const taken = await createVolume('alice', { size: 1, imageRef: small.id });
    expect(taken.status).toBe(202);
    await waitForVolume(
      volumes('alice'),
      tokens.alice as string,
      taken.body.volume.id,
      ['available'],
      60_000,
    );
    // no volume went to error for any of the refusals
    expect(await stack.query("SELECT id FROM volumes WHERE status = 'error'")).toEqual([]);
  }, 120_000);

  test('an image the worker cannot write leaves the volume in error with a user message', async () => {
    // said to be qcow2, it is text: the API sees a small image, qemu-img finds no qcow2 in it
    const lying = await createImage('alice', { name: 'not-qcow2', disk_format: 'qcow2' });
    expect((await upload('alice', lying.id, Buffer.from('not a disk image\n'))).status).toBe(204);
    const created = await createVolume('alice', { size: 1, imageRef: lying.id });
    expect(created.status).toBe(202);
    const id = created.body.volume.id;
    await waitForVolume(volumes('alice'), tokens.alice as string, id, ['error'], 60_000);
    const messages = await request(`${volumes('alice')}/messages`, {
      token: tokens.alice as string,
      headers: { 'OpenStack-API-Version': 'volume 3.3' },
    });
    const message = messages.body.messages.find((m: { resource_uuid: string }) => m.resource_uuid === id);
    expect(message.user_message).toMatch(/^create volume from backend: create failed: .*qemu-img info/);
  }, 120_000);

  test('projects reach neither the images nor the volumes of others', async () => {
    const image = await createImage('alice', {
      name: 'alice-only',
      disk_format: 'raw',
      visibility: 'private',
    });
    expect((await upload('alice', image.id, Buffer.alloc(2048, 7))).status).toBe(204);
    // another project cannot make a volume from it, nor upload into it
    const res = await createVolume('bob', { size: 1, imageRef: image.id });
    expect(res.status).toBe(400);
    expect((await upload('bob', image.id, Buffer.from('x'))).status).toBe(404);
    // nor copy alice's volumes into images
    const created = await createVolume('alice', { size: 1 });
    const volume = await waitForVolume(volumes('alice'), tokens.alice as string, created.body.volume.id, [
      'available',
    ]);
    const foreign = await request(`${volumes('bob')}/volumes/${volume.id}/action`, {
      method: 'POST',
      token: tokens.bob as string,
      body: { 'os-volume_upload_image': { image_name: 'stolen' } },
    });
    expect(foreign.status).toBe(404);
    expect((await images('bob')).body.images.map((i: { name: string }) => i.name)).not.toContain('stolen');
    // the reader of alice's project may not upload her volume
    const reader = await action('carol', volume.id, {
      'os-volume_upload_image': { image_name: 'by-reader' },
    });
    expect(reader.status).toBe(403);
    // an admin sees every project's images
    expect((await images('admin', `/${image.id}`)).status).toBe(200);
  });
});
