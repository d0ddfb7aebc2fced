import type { DiskFormat, ImageFields, ImageRecord, ImageVisibility } from '@basalt/db';
import { ForbiddenError, InvalidInputError, OverLimitError } from '@basalt/errors';

/** What Glance shows but nobody sets. */
const READ_ONLY = new Set([
  'status',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'size',
  'virtual_size',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'owner',
  'os_hidden',
]);
export const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'qcow2'];
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
/** Glance's `image_tag_quota` default: the most tags an image has. */
export const IMAGE_TAG_QUOTA = 128;
const VISIBILITIES: readonly ImageVisibility[] = ['public', 'private', 'shared', 'community'];

interface Caller {
  readonly isAdmin: boolean;
}

/** The fields of Glance's image create body (`id` is the caller's to read): core ones checked, the rest properties. */
export function imageFields(body: unknown, caller: Caller): ImageFields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('The request body must be a JSON object.');
  }
  let fields: Mutable<ImageFields> = {};
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === 'id') continue;
    fields = { ...fields, ...attribute(key, value, caller, properties) };
  }
  return { ...fields, properties };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Applies a Glance JSON patch (2.1's `{op, path, value}` or 2.0's `{"<op>": path, value}`) to the
 * image: the fields to write. Core attributes are replaced (not removed), properties added,
 * replaced or removed.
 */
export function imagePatch(image: ImageRecord, body: unknown, caller: Caller): ImageFields {
  if (!Array.isArray(body)) throw new InvalidInputError('A JSON patch is a list of operations.');
  let fields: Mutable<ImageFields> = {};
  const properties: Record<string, string> = { ...image.properties };
  for (const change of body) {
    if (typeof change !== 'object' || change === null)
      throw new InvalidInputError('Invalid JSON patch operation.');
    const c = change as Record<string, unknown>;
    const op = typeof c.op === 'string' ? c.op : ['add', 'replace', 'remove'].find((o) => o in c);
    const path = typeof c.op === 'string' ? c.path : op === undefined ? undefined : c[op];
    if (
      (op !== 'add' && op !== 'replace' && op !== 'remove') ||
      typeof path !== 'string' ||
      !/^\/[^/]+$/.test(path)
    ) {
      throw new InvalidInputError(`Invalid JSON patch operation: ${JSON.stringify(change).slice(0, 200)}`);
    }
    const key = path.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
    if (op === 'remove') {
      if (READ_ONLY.has(key)) throw new ForbiddenError(`Attribute '${key}' is read-only.`);
      if (key in CORE) throw new ForbiddenError(`Property ${key} may not be removed.`);
      if (!(key in properties)) throw new InvalidInputError(`Property ${key} does not exist.`);
      delete properties[key];
      continue;
    }
    if (op === 'replace' && !(key in CORE) && !READ_ONLY.has(key) && !(key in properties)) {
      throw new InvalidInputError(`Property ${key} does not exist.`);
    }
    fields = { ...fields, ...attribute(key, c.value, caller, properties) };
  }
  return { ...fields, properties };
}

/** One attribute checked as Glance's image schema has it; a property is written into `properties`. */
function attribute(
  key: string,
  value: unknown,
  caller: Caller,
  properties: Record<string, string>,
): ImageFields {
  if (READ_ONLY.has(key)) throw new ForbiddenError(`Attribute '${key}' is read-only.`);
  if (key.startsWith('os_glance')) throw new ForbiddenError(`Attribute '${key}' is reserved.`);
  const core = CORE[key];
  if (core) return core(value, caller);
  if (key.length > 255) throw new InvalidInputError(`Property name ${key.slice(0, 32)}… is longer than 255.`);
  if (typeof value !== 'string' || value.length > 65535) {
    throw new InvalidInputError(`Invalid value for property ${key}: a string is required.`);
  }
  properties[key] = value;
  return {};
}

const oneOf =
  <T extends string>(field: string, allowed: readonly T[]) =>
  (value: unknown): T | null => {
    if (value === null) return null;
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      throw new InvalidInputError(
        `Invalid value '${String(value)}' for ${field}: one of ${allowed.join(', ')}.`,
      );
    }
    return value as T;
  };

const count = (field: string, value: unknown): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInputError(`Invalid value for ${field}: a whole number of at least 0.`);
  }
  return value;
};

/** Glance's core attributes, each with its check. */
const CORE: Readonly<Record<string, (value: unknown, caller: Caller) => ImageFields>> = {
  name: (value) => {
    if (value !== null && (typeof value !== 'string' || value.length > 255)) {
      throw new InvalidInputError('Invalid name: a string of at most 255 characters.');
    }
    return { name: value };
  },
  disk_format: (value) => ({ diskFormat: oneOf('disk_format', DISK_FORMATS)(value) }),
  container_format: (value) => ({ containerFormat: oneOf('container_format', CONTAINER_FORMATS)(value) }),
  visibility: (value, caller) => {
    const visibility = oneOf('visibility', VISIBILITIES)(value);
    if (visibility === null) throw new InvalidInputError('Invalid value None for visibility.');
    // Glance's publicize_image: only an admin makes an image public
    if (visibility === 'public' && !caller.isAdmin) {
      throw new ForbiddenError('You are not authorized to complete publicize_image action.');
    }
    return { visibility };
  },
  protected: (value) => {
    if (typeof value !== 'boolean')
      throw new InvalidInputError('Invalid value for protected: true or false.');
    return { protected: value };
  },
  min_disk: (value) => ({ minDisk: count('min_disk', value) }),
  min_ram: (value) => ({ minRam: count('min_ram', value) }),
  tags: (value) => {
    if (!Array.isArray(value)) throw notImageSchema(`${pyRepr(value)} is not of type 'array'`);
    for (const tag of value) checkTag(tag);
    enforceTagQuota(value.length);
    // a set, as Glance keeps them
    return { tags: [...new Set(value as string[])] };
  },
};

/** A tag as Glance's image schema has one: a string of at most 255 characters. */
export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string') throw notImageSchema(`${pyRepr(tag)} is not of type 'string'`);
  if (tag.length > 255) throw notImageSchema(`${pyRepr(tag)} is too long`);
  return tag;
}

/** Glance's ImageTagLimitExceeded. */
export const tagLimitExceeded = (attempted: number) =>
  `The limit has been exceeded on the number of allowed image tags. Attempted: ${attempted}, Maximum: ${IMAGE_TAG_QUOTA}`;

/** Glance's `_enforce_image_tag_quota`: more tags than the quota is a 413. */
function enforceTagQuota(attempted: number): void {
  if (attempted > IMAGE_TAG_QUOTA) throw new OverLimitError(tagLimitExceeded(attempted));
}

/** Glance's InvalidObject, with the first line of jsonschema's reason. */
const notImageSchema = (reason: string) =>
  new InvalidInputError(`Provided object does not match schema 'image': ${reason}`);

/** A value as jsonschema's messages (Python's repr) show it. */
const pyRepr = (value: unknown): string =>
  typeof value === 'string'
    ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
    : value === null
      ? 'None'
      : typeof value === 'boolean'
        ? value
          ? 'True'
          : 'False'
        : JSON.stringify(value);
