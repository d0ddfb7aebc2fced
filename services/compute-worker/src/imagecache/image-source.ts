/**
 * An image to cache, as the compute manager gets it from the image API. The cache calls
 * `download` at most once per image and host, however many instances boot from it at once.
 */
export interface ImageSource {
  /** The image id: the cache file is `_base/<sha1 of it>`. */
  readonly id: string;
  /** The image's bytes (a Node Readable, a fetch body or any async iterable of chunks). */
  readonly download: () => Promise<AsyncIterable<Uint8Array>>;
  /** The image API's `disk_format`; qcow2 images are converted to raw in the cache. */
  readonly diskFormat: 'raw' | 'qcow2';
  /** Bytes the download must have, when the image API says. */
  readonly size?: number;
  /** MD5 hex the download must have (Glance's `checksum`), when the image API says. */
  readonly checksum?: string;
}
