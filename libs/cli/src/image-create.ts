import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DataSource, DiskFormat, ImageRecord } from '@basalt/db';
import { ImageRepository } from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,254}$/;

/** Reads a disk image's format and virtual size from its header: qcow2 by its magic, else raw. */
async function inspect(path: string): Promise<{ format: DiskFormat; virtualSize: number; size: number }> {
  const { size, isFile } = await stat(path).then(
    (s) => ({ size: s.size, isFile: s.isFile() }),
    () => ({ size: 0, isFile: false }),
  );
  if (!isFile) throw new InvalidInputError(`${path} is not a readable file`);
  if (size === 0) throw new InvalidInputError(`${path} is empty`);
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(32);
    await handle.read(header, 0, 32, 0);
    if (header.readUInt32BE(0) === 0x514649fb) {
      return { format: 'qcow2', virtualSize: Number(header.readBigUInt64BE(24)), size };
    }
    return { format: 'raw', virtualSize: size, size };
  } finally {
    await handle.close();
  }
}

/**
 * Registers a disk image for servers to boot from: the file is copied into the image store
 * (`[glance_store] filesystem_store_datadir`) under the image's id, with its MD5 and SHA-512 taken
 * on the way, and the image becomes `active`. A copy that fails leaves no image behind.
 */
export async function createImage(
  ds: DataSource,
  dataDir: string,
  request: { file: string; name: string; visibility: 'public' | 'private'; owner: string | null },
): Promise<ImageRecord> {
  if (!NAME.test(request.name)) {
    throw new InvalidInputError(`invalid image name "${request.name}": letters, digits, space and ._:- only`);
  }
  const file = await inspect(request.file);
  const images = new ImageRepository(ds);
  const image = await images.create({
    id: randomUUID(),
    name: request.name,
    diskFormat: file.format,
    owner: request.owner,
    visibility: request.visibility,
  });
  await mkdir(dataDir, { recursive: true });
  const partial = join(dataDir, `${image.id}.part`);
  try {
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    const hashing = new Transform({
      transform(chunk, _encoding, done) {
        md5.update(chunk);
        sha512.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(createReadStream(request.file), hashing, createWriteStream(partial, { mode: 0o640 }));
    await rename(partial, join(dataDir, image.id));
    const active = await images.activate(image.id, {
      fileName: image.id,
      size: file.size,
      virtualSize: file.virtualSize,
      checksum: md5.digest('hex'),
      osHashValue: sha512.digest('hex'),
    });
    if (!active) throw new Error(`image ${image.id} was removed while it was being stored`);
    return active;
  } catch (error) {
    await rm(partial, { force: true });
    await rm(join(dataDir, image.id), { force: true });
    await images.remove(image.id);
    throw error;
  }
}
