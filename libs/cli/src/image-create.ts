import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataSource, ImageRecord } from '@basalt/db';
import { IMAGE_STATES, ImageRepository } from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';
import { inspectImage, storeImage } from '@basalt/images';

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,254}$/;

const { beginUpload, finishUpload } = IMAGE_STATES.movesOf('api');

/**
 * Registers a disk image for servers to boot from, as the image API's create and upload would:
 * the file is copied into the image store (`[glance_store] filesystem_store_datadir`) under the
 * image's id, with its MD5 and SHA-512 taken on the way, and the image becomes `active`. A copy
 * that fails leaves no image behind.
 */
export async function createImage(
  ds: DataSource,
  dataDir: string,
  request: { file: string; name: string; visibility: 'public' | 'private'; owner: string | null },
): Promise<ImageRecord> {
  if (!NAME.test(request.name)) {
    throw new InvalidInputError(`invalid image name "${request.name}": letters, digits, space and ._:- only`);
  }
  const file = await inspectImage(request.file);
  if (file.size === 0) throw new InvalidInputError(`${request.file} is empty`);
  const images = new ImageRepository(ds);
  const image = await images.create({
    id: randomUUID(),
    name: request.name,
    diskFormat: file.format,
    containerFormat: 'bare',
    owner: request.owner,
    visibility: request.visibility,
  });
  try {
    if (!(await images.transition(image.id, beginUpload)))
      throw new Error(`image ${image.id} was removed before its data was stored`);
    const stored = await storeImage(
      dataDir,
      image.id,
      createReadStream(request.file),
      Number.MAX_SAFE_INTEGER,
    );
    const active = await images.transition(image.id, finishUpload, stored);
    if (!active) throw new Error(`image ${image.id} was removed while it was being stored`);
    return active;
  } catch (error) {
    await rm(join(dataDir, image.id), { force: true });
    await images.remove(image.id);
    throw error;
  }
}
