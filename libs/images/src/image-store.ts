import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BasaltError, InvalidInputError } from '@basalt/errors';

/** The upload was larger than the store takes (`[glance_store] image_size_cap`). */
export class ImageTooLargeError extends BasaltError {}

/** What a disk image's header says: qcow2 by its magic (with its virtual size), else raw. */
export async function inspectImage(
  path: string,
): Promise<{ format: 'raw' | 'qcow2'; virtualSize: number; size: number }> {
  const { size, isFile } = await stat(path).then(
    (s) => ({ size: s.size, isFile: s.isFile() }),
    () => ({ size: 0, isFile: false }),
  );
  if (!isFile) throw new InvalidInputError(`${path} is not a readable file`);
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(32);
    const { bytesRead } = await handle.read(header, 0, 32, 0);
    if (bytesRead >= 32 && header.readUInt32BE(0) === 0x514649fb) {
      return { format: 'qcow2', virtualSize: Number(header.readBigUInt64BE(24)), size };
    }
    return { format: 'raw', virtualSize: size, size };
  } finally {
    await handle.close();
  }
}

/** A stored image file: its name in the store, size and Glance's checksums. */
export interface StoredImage {
  readonly fileName: string;
  readonly size: number;
  readonly virtualSize: number;
  /** MD5 hex (Glance's `checksum`). */
  readonly checksum: string;
  /** SHA-512 hex (`os_hash_value`, `os_hash_algo` sha512). */
  readonly osHashValue: string;
}

/**
 * Writes an image's data into the store (`[glance_store] filesystem_store_datadir`) under its id,
 * with its MD5 and SHA-512 taken on the way; more than `maxBytes` is refused as it arrives. The
 * file appears whole or not at all: a failed write leaves nothing behind.
 */
export async function storeImage(
  dataDir: string,
  imageId: string,
  data: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  maxBytes: number,
): Promise<StoredImage> {
  await mkdir(dataDir, { recursive: true });
  const partial = join(dataDir, `${imageId}.part`);
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  let size = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > maxBytes) {
        done(new ImageTooLargeError(`Image exceeds the storage quota: more than ${maxBytes} bytes.`));
        return;
      }
      md5.update(chunk);
      sha512.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(data, hashing, createWriteStream(partial, { mode: 0o640 }));
    const { virtualSize } = await inspectImage(partial);
    await rename(partial, join(dataDir, imageId));
    return {
      fileName: imageId,
      size,
      virtualSize,
      checksum: md5.digest('hex'),
      osHashValue: sha512.digest('hex'),
    };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}
