import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage, InvalidInputError, NotFoundError } from '@basalt/errors';
import type { CommandRunner } from '@basalt/exec';
import type { ImageApi } from '@basalt/images';
import type { Logger } from '@basalt/log';

const GiB = 1024 ** 3;
/** qemu-img on a whole volume: as long as the copy takes. */
const CONVERT_TIMEOUT_MS = 3_600_000;
const FORMATS = ['raw', 'qcow2'] as const;
type Format = (typeof FORMATS)[number];

/**
 * Copies between volumes and images through the image API (Basalt's or a real Glance), as
 * Cinder's image_utils does: an image is downloaded into the conversion directory, checked and
 * written into the volume with `qemu-img convert` (raw); a volume is uploaded as it is (raw) or
 * converted first (qcow2).
 */
export class ImageTransfer {
  constructor(
    private readonly runner: CommandRunner,
    private readonly images: ImageApi,
    private readonly conversionDir: string,
  ) {}

  /** Writes image `imageId` into the volume whose block device or file is `target`, of `sizeGb`. */
  async copyImageToVolume(imageId: string, target: string, sizeGb: number, log: Logger): Promise<void> {
    const meta = await this.images.show(imageId);
    if (meta.status !== 'active')
      throw new InvalidInputError(`Image ${imageId} is ${meta.status}, not active.`);
    const format = formatOf(meta.disk_format);
    await this.withScratch(async (scratch) => {
      const md5 = createHash('md5');
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          md5.update(chunk);
          done(null, chunk);
        },
      });
      await pipeline(
        await this.images.download(imageId),
        hashing,
        createWriteStream(scratch, { mode: 0o600 }),
      );
      const checksum = md5.digest('hex');
      if (typeof meta.checksum === 'string' && meta.checksum !== checksum) {
        throw new InvalidInputError(
          `Image ${imageId} arrived with checksum ${checksum}; the image API says ${meta.checksum}.`,
        );
      }
      const info = JSON.parse(
        (await this.qemuImg(['info', '--output=json', '-f', format, scratch], log)).stdout,
      ) as { 'virtual-size'?: number; 'backing-filename'?: string };
      // an image that names a backing file would have qemu-img read a file of this host
      if (info['backing-filename'] !== undefined) {
        throw new InvalidInputError(
          `Image ${imageId} has a backing file: it cannot be written into a volume.`,
        );
      }
      const virtualSize = info['virtual-size'] ?? 0;
      if (virtualSize > sizeGb * GiB) {
        throw new InvalidInputError(
          `Image virtual size is ${Math.ceil(virtualSize / GiB)}GB and doesn't fit in a volume of size ${sizeGb}GB.`,
        );
      }
      await this.qemuImg(['convert', '-n', '-f', format, '-O', 'raw', scratch, target], log);
    });
  }

  /** Uploads the volume whose block device or file is `source` as the data of image `image.id`. */
  async copyVolumeToImage(
    source: string,
    image: { id: string; disk_format: string },
    log: Logger,
  ): Promise<void> {
    const format = formatOf(image.disk_format);
    if (format === 'raw') {
      await this.images.upload(image.id, () => createReadStream(source));
      return;
    }
    await this.withScratch(async (scratch) => {
      await this.qemuImg(['convert', '-f', 'raw', '-O', format, source, scratch], log);
      await this.images.upload(image.id, () => createReadStream(scratch));
    });
  }

  /** Deletes an image a failed copy leaves behind; one already gone, or an API away, is only told. */
  async discard(imageId: string, log: Logger): Promise<void> {
    await this.images.delete(imageId).catch((error: unknown) => {
      if (!(error instanceof NotFoundError))
        log.warn({ image_id: imageId, err: errorMessage(error) }, 'image of a failed copy not deleted');
    });
  }

  private async withScratch(work: (path: string) => Promise<void>): Promise<void> {
    await mkdir(this.conversionDir, { recursive: true, mode: 0o700 });
    const scratch = join(this.conversionDir, `tmp-${randomUUID()}`);
    try {
      await work(scratch);
    } finally {
      await rm(scratch, { force: true });
    }
  }

  private qemuImg(args: readonly string[], log: Logger) {
    return this.runner.run({ argv: ['qemu-img', ...args], timeoutMs: CONVERT_TIMEOUT_MS }, log);
  }
}

function formatOf(diskFormat: unknown): Format {
  if (!FORMATS.includes(diskFormat as Format)) {
    throw new InvalidInputError(`Disk format ${String(diskFormat)} is not supported: raw or qcow2.`);
  }
  return diskFormat as Format;
}
