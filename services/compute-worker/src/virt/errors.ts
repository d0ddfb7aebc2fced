import {
  BasaltError,
  type BasaltErrorOptions,
  InvalidInputError,
  NotFoundError,
  registerErrorClasses,
} from '@basalt/errors';

/** libvirt or QEMU refused or failed an operation; `retryable` says whether trying again may help. */
export class HypervisorError extends BasaltError {}

/** No domain of that name is defined on this host. */
export class DomainNotFoundError extends NotFoundError {}

/** The guest did not release a disk within `[compute] device_detach_timeout`; detaching again may work. */
export class DeviceDetachTimeoutError extends BasaltError {
  constructor(message: string, options: BasaltErrorOptions = {}) {
    super(message, { retryable: true, ...options });
  }

  static of(domain: string, target: string, seconds: number, requests = 1): DeviceDetachTimeoutError {
    return new DeviceDetachTimeoutError(
      `Disk ${target} of ${domain} was still attached after ${seconds} s and ${requests} unplug request${requests === 1 ? '' : 's'}`,
      { data: { domain, target, requests } },
    );
  }
}

/** The image could not be fetched or converted into the cache (a failed download, a bad checksum). */
export class ImageCacheError extends BasaltError {}

/** The flavor's root disk is smaller than the image, so the image cannot fit. */
export class FlavorDiskSmallerThanImageError extends InvalidInputError {}

/** A volume could not be connected to this host (login refused, the device never appeared). */
export class VolumeConnectionError extends BasaltError {}

registerErrorClasses(
  HypervisorError,
  DomainNotFoundError,
  DeviceDetachTimeoutError,
  ImageCacheError,
  FlavorDiskSmallerThanImageError,
  VolumeConnectionError,
);
