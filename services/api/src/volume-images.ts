import { ConflictError, InvalidInputError, NotFoundError } from '@basalt/errors';
import type { GlanceImage, ImageApi } from '@basalt/images';
import { isUuid } from './validate';

const GiB = 1024 ** 3;

/** Glance's base image attributes: the rest of an image's keys are its properties. */
const GLANCE_BASE = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'owner',
  'size',
  'virtual_size',
  'min_disk',
  'min_ram',
  'container_format',
  'disk_format',
  'created_at',
  'updated_at',
  'tags',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
]);

/** What Cinder copies from an image into a volume's volume_image_metadata besides its properties. */
const IMAGE_ATTRIBUTES = ['checksum', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'size'];

/** An image's properties (its keys that are no Glance base attribute). */
function imageProperties(image: GlanceImage): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).filter(([key]) => !GLANCE_BASE.has(key)));
}

/**
 * The image an `imageRef` names, as Cinder finds it: by id (a URL's last part), else by a unique
 * name; none is a 400, several of one name a 409.
 */
export async function findImage(images: ImageApi, ref: unknown): Promise<GlanceImage> {
  if (typeof ref !== 'string') throw new InvalidInputError('Invalid imageRef provided.');
  const id = ref.split('/').pop() ?? '';
  if (isUuid(id)) {
    const image = await images.show(id).catch((error: unknown) => {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    });
    if (image) return image;
  }
  const named = ref.length > 0 && ref.length <= 255 ? await images.list({ name: ref }) : [];
  if (named.length > 1) {
    throw new ConflictError(`Multiple matches found for '${ref}', use an ID to be more specific.`);
  }
  if (named[0]) return named[0];
  throw new InvalidInputError('Invalid image identifier or unable to access requested image.');
}

/** Cinder's check_image_metadata: an active image that fits a volume of `size` GiB. */
export function checkImage(image: GlanceImage, size: number): void {
  if (image.status !== 'active') throw new InvalidInputError(`Image ${image.id} is not active.`);
  const sizeGb = Math.ceil((image.size ?? 0) / GiB);
  if (sizeGb > size) {
    throw new InvalidInputError(`Size of specified image ${sizeGb}GB is larger than volume size ${size}GB.`);
  }
  const minDisk = image.min_disk ?? 0;
  if (size < minDisk) {
    throw new InvalidInputError(
      `Volume size ${size}GB cannot be smaller than the image minDisk size ${minDisk}GB.`,
    );
  }
  const virtualGb = Math.ceil((image.virtual_size ?? 0) / GiB);
  if (virtualGb > size) {
    throw new InvalidInputError(
      `Image ${image.id} is unacceptable: Image virtual size is ${virtualGb}GB and doesn't fit in a volume of size ${size}GB.`,
    );
  }
}

/** Cinder's volume_image_metadata of a volume made from `image`: its properties and some attributes, as text. */
export function volumeImageMetadata(image: GlanceImage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(imageProperties(image))) {
    if (value !== null && value !== undefined) metadata[key] = String(value);
  }
  metadata.image_id = image.id;
  if (image.name) metadata.image_name = image.name;
  for (const key of IMAGE_ATTRIBUTES) {
    const value = image[key];
    if (value !== null && value !== undefined) metadata[key] = String(value);
  }
  return metadata;
}
