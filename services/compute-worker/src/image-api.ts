import { Readable } from 'node:stream';
import { BasaltError, NotFoundError } from '@basalt/errors';
import type { ImageSource } from './imagecache/image-source';

export interface ImageApiOptions {
  /** `[glance] api_servers`: the image API's base URL. */
  readonly url: string;
  /** A token for it (the service user's); `refused` is one it answered 401 to. */
  readonly token: (refused?: string) => Promise<string>;
}

/** The image API failed in a way a retry may mend (down, 5xx). */
export class ImageApiError extends BasaltError {}

/**
 * The compute worker's client of the image API (Glance v2, ours or a real one): an image's
 * metadata, and its file as the download the image cache calls once.
 */
export class ImageApi {
  constructor(private readonly options: ImageApiOptions) {}

  async source(imageId: string): Promise<ImageSource> {
    const meta = (await (await this.get(`/v2/images/${encodeURIComponent(imageId)}`)).json()) as {
      status?: string;
      disk_format?: string;
      size?: number | null;
      checksum?: string | null;
    };
    if (meta.status !== 'active') throw new NotFoundError(`Image ${imageId} is not active`);
    if (meta.disk_format !== 'raw' && meta.disk_format !== 'qcow2') {
      throw new NotFoundError(`Image ${imageId} is ${meta.disk_format}: only raw and qcow2 boot here`);
    }
    return {
      id: imageId,
      diskFormat: meta.disk_format,
      ...(typeof meta.size === 'number' ? { size: meta.size } : {}),
      ...(typeof meta.checksum === 'string' ? { checksum: meta.checksum } : {}),
      download: async () => {
        const response = await this.get(`/v2/images/${encodeURIComponent(imageId)}/file`);
        if (!response.body) throw new ImageApiError(`Image ${imageId} has no data`);
        return Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
      },
    };
  }

  private async get(path: string): Promise<Response> {
    const token = await this.options.token();
    let response = await this.fetch(path, token);
    if (response.status === 401) response = await this.fetch(path, await this.options.token(token));
    if (response.status === 404) throw new NotFoundError(`The image API has no ${path}`);
    if (!response.ok) {
      throw new ImageApiError(`The image API answered ${response.status} to GET ${path}`, {
        retryable: response.status >= 500,
      });
    }
    return response;
  }

  private fetch(path: string, token: string): Promise<Response> {
    return fetch(`${this.options.url.replace(/\/+$/, '')}${path}`, {
      headers: { 'X-Auth-Token': token, Accept: 'application/json' },
    }).catch((error: unknown) => {
      throw new ImageApiError(`The image API at ${this.options.url} cannot be reached: ${String(error)}`, {
        retryable: true,
        cause: error,
      });
    });
  }
}
