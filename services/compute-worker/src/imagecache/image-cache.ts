import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { KeyedLock } from '@basalt/concurrency';
import { errorMessage, isRetryable } from '@basalt/errors';
import type { CommandRunner } from '@basalt/exec';
import { GiB } from '@basalt/naming';
import { exists } from '../exists';
import { FlavorDiskSmallerThanImageError, ImageCacheError } from '../virt/errors';
import { withFileLock } from './file-lock';
import type { ImageSource } from './image-source';

/**
 * `_base/` under `[compute] instances_path`: Nova's image cache. Each file is built once per host
 * (a keyed lock for this process, a lock file for other processes) into a temporary name and
 * renamed into place, so a reader never sees half a file and a crash leaves no false entry.
 *
 *   _base/<sha1 of image id>          the image as raw (qcow2 images are converted)
 *   _base/<sha1>_<root_gb>            a copy grown to the flavor's root size
 *   _base/ephemeral_0_<gb>_None       a sparse ext3 filesystem labelled ephemeral0
 */
export class ImageCache {
  readonly dir: string;

  constructor(
    private readonly runner: CommandRunner,
    instancesPath: string,
    private readonly locks = new KeyedLock(),
  ) {
    this.dir = join(instancesPath, '_base');
  }

  /** The image as a raw file in the cache, downloaded on first use. */
  async image(image: ImageSource): Promise<string> {
    const path = join(this.dir, createHash('sha1').update(image.id).digest('hex'));
    await this.once(path, (tmp) => this.fetchInto(image, tmp));
    return path;
  }

  /** The base of a root disk of `rootGb` (0: the image's own size). */
  async root(image: ImageSource, rootGb: number): Promise<string> {
    const base = await this.image(image);
    if (rootGb === 0) return base;
    const imageBytes = (await stat(base)).size;
    const rootBytes = rootGb * GiB;
    if (rootBytes < imageBytes) {
      throw new FlavorDiskSmallerThanImageError(
        `Flavor's disk is too small for requested image: ${rootGb} GB < ${imageBytes} bytes`,
      );
    }
    if (rootBytes === imageBytes) return base;
    const sized = `${base}_${rootGb}`;
    await this.once(sized, async (tmp) => {
      // convert rather than copy: it keeps the holes of a sparse image
      await this.qemuImg(['convert', '-f', 'raw', '-O', 'raw', base, tmp]);
      await this.qemuImg(['resize', '-f', 'raw', tmp, String(rootBytes)]);
    });
    return sized;
  }

  /** The base of every ephemeral disk of `gb`: one sparse ext3 filesystem, labelled as Nova labels it. */
  async ephemeral(gb: number): Promise<string> {
    const path = join(this.dir, `ephemeral_0_${gb}_None`);
    await this.once(path, async (tmp) => {
      const handle = await open(tmp, 'w', 0o644);
      await handle.truncate(gb * GiB);
      await handle.close();
      await this.run(['mkfs.ext3', '-F', '-q', '-L', 'ephemeral0', tmp], 600_000);
    });
    return path;
  }

  /** Builds `path` with `build(tmp)` unless it is there; the build runs once at a time across processes. */
  private once(path: string, build: (tmp: string) => Promise<void>): Promise<void> {
    return this.locks.run(path, async () => {
      if (await exists(path)) return;
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      await withFileLock(`${path}.lock`, async () => {
        if (await exists(path)) return;
        const tmp = `${path}.part-${randomBytes(4).toString('hex')}`;
        try {
          await build(tmp);
          await rename(tmp, path);
        } finally {
          await rm(tmp, { force: true });
        }
      });
    });
  }

  private async fetchInto(image: ImageSource, tmp: string): Promise<void> {
    const download = `${tmp}.download`;
    try {
      const md5 = createHash('md5');
      let bytes = 0;
      try {
        const chunks = await image.download();
        await pipeline(
          chunks,
          async function* (source: AsyncIterable<Uint8Array>) {
            for await (const chunk of source) {
              md5.update(chunk);
              bytes += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(download, { mode: 0o644 }),
        );
      } catch (error) {
        throw new ImageCacheError(`Download of image ${image.id} failed: ${errorMessage(error)}`, {
          retryable: true,
          cause: error,
        });
      }
      if (image.size !== undefined && bytes !== image.size) {
        throw new ImageCacheError(`Image ${image.id} has ${bytes} bytes, the image API said ${image.size}`, {
          retryable: true,
        });
      }
      const checksum = md5.digest('hex');
      if (image.checksum !== undefined && checksum !== image.checksum.toLowerCase()) {
        throw new ImageCacheError(
          `Image ${image.id} has checksum ${checksum}, the image API said ${image.checksum}`,
        );
      }
      await this.checkFormat(image, download);
      if (image.diskFormat === 'raw') await rename(download, tmp);
      else await this.qemuImg(['convert', '-f', 'qcow2', '-O', 'raw', download, tmp]);
    } finally {
      await rm(download, { force: true });
    }
  }

  /** What the bytes really are must be what the image claims, with no backing file (which could name any host file). */
  private async checkFormat(image: ImageSource, path: string): Promise<void> {
    const { stdout } = await this.qemuImg(['info', '--output=json', path]);
    const info = JSON.parse(stdout) as { format?: string; 'backing-filename'?: string };
    if (info.format !== image.diskFormat) {
      throw new ImageCacheError(
        `Image ${image.id} says disk_format ${image.diskFormat} but is ${info.format}`,
      );
    }
    if (info['backing-filename'] !== undefined) {
      throw new ImageCacheError(`Image ${image.id} has a backing file; refusing it`);
    }
  }

  private qemuImg(args: readonly string[]) {
    return this.run(['qemu-img', ...args], 600_000);
  }

  private async run(argv: readonly [string, ...string[]], timeoutMs: number) {
    try {
      return await this.runner.run({ argv, timeoutMs });
    } catch (error) {
      throw new ImageCacheError(`${argv[0]} failed: ${errorMessage(error)}`, {
        retryable: isRetryable(error),
        cause: error,
      });
    }
  }
}
