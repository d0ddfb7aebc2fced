import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { KeyedLock } from '@basalt/concurrency';
import { errorMessage, InvalidInputError, isRetryable } from '@basalt/errors';
import type { CommandRunner } from '@basalt/exec';
import { exists } from '../exists';
import { ImageCacheError } from '../virt/errors';
import type { ImageCache } from './image-cache';
import type { InstanceDisksRequest, InstancePaths, InstanceStorage } from './instance-storage';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Instance folders under `[compute] instances_path` (Nova's Qcow2 image backend): `disk` and
 * `disk.local` are qcow2 overlays over `_base` files, so an instance's disks cost only what the
 * guest writes.
 */
export class InstanceDisks implements InstanceStorage {
  private readonly locks = new KeyedLock();

  constructor(
    private readonly runner: CommandRunner,
    private readonly cache: ImageCache,
    private readonly instancesPath: string,
  ) {
    if (!isAbsolute(instancesPath))
      throw new InvalidInputError(`instances_path ${instancesPath} is not absolute`);
  }

  paths(name: string): InstancePaths {
    if (!NAME.test(name)) throw new InvalidInputError(`Bad instance name ${name}`);
    const dir = join(this.instancesPath, name);
    return {
      dir,
      disk: join(dir, 'disk'),
      diskLocal: join(dir, 'disk.local'),
      libvirtXml: join(dir, 'libvirt.xml'),
      consoleLog: join(dir, 'console.log'),
      shellSocket: join(dir, 'shell.sock'),
    };
  }

  createDisks(request: InstanceDisksRequest): Promise<InstancePaths> {
    const paths = this.paths(request.name);
    for (const [what, gb] of [
      ['root', request.rootGb],
      ['ephemeral', request.ephemeralGb],
    ] as const) {
      if (!Number.isSafeInteger(gb) || gb < 0) throw new InvalidInputError(`Bad ${what} disk size ${gb}`);
    }
    return this.locks.run(request.name, async () => {
      await mkdir(paths.dir, { recursive: true, mode: 0o755 });
      if (!(await exists(paths.disk))) {
        await this.overlay(await this.cache.root(request.image, request.rootGb), paths.disk);
      }
      if (request.ephemeralGb > 0 && !(await exists(paths.diskLocal))) {
        await this.overlay(await this.cache.ephemeral(request.ephemeralGb), paths.diskLocal);
      }
      return paths;
    });
  }

  async writeLibvirtXml(name: string, xml: string): Promise<void> {
    const path = this.paths(name).libvirtXml;
    await writeFile(`${path}.tmp`, xml, { mode: 0o644 });
    await rename(`${path}.tmp`, path);
  }

  async removeInstance(name: string): Promise<void> {
    await this.locks.run(name, () => rm(this.paths(name).dir, { recursive: true, force: true }));
  }

  /** A qcow2 file over a raw base, made under a temporary name so a half-made disk is never used. */
  private async overlay(base: string, path: string): Promise<void> {
    const tmp = `${path}.part`;
    try {
      await this.runner.run({
        argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, tmp],
        timeoutMs: 60_000,
      });
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw new ImageCacheError(`Could not create ${path}: ${errorMessage(error)}`, {
        retryable: isRetryable(error),
        cause: error,
      });
    }
  }
}
