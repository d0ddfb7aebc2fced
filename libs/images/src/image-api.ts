import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { BasaltError, InvalidInputError, NotFoundError } from '@basalt/errors';

export interface ImageApiOptions {
  /** The image API's base URL (`[glance] api_servers`, or the catalog's `image` endpoint). */
  readonly url: string;
  /** A token for it, asked for again (`renew`) when it is refused. */
  readonly token: (renew: boolean) => Promise<string>;
}

/** The image API failed in a way a retry may mend (down, 5xx). */
export class ImageApiError extends BasaltError {}

/** An image as Glance v2 shows it: the fields Basalt reads, and every other property as given. */
export interface GlanceImage {
  readonly id: string;
  readonly name?: string | null;
  readonly status?: string;
  readonly disk_format?: string | null;
  readonly container_format?: string | null;
  readonly size?: number | null;
  readonly virtual_size?: number | null;
  readonly checksum?: string | null;
  readonly min_disk?: number;
  readonly min_ram?: number;
  readonly visibility?: string;
  readonly protected?: boolean;
  readonly [property: string]: unknown;
}

/**
 * A client of the image API (Glance v2: Basalt's own or a real Glance): an image's metadata, its
 * data as a stream, and the create, upload and delete that copying a volume into an image needs.
 */
export class ImageApi {
  constructor(private readonly options: ImageApiOptions) {}

  async show(imageId: string): Promise<GlanceImage> {
    return (
      await this.request('GET', `/v2/images/${encodeURIComponent(imageId)}`)
    ).json() as Promise<GlanceImage>;
  }

  /** The images the caller sees whose name is `filter.name`. */
  async list(filter: { name: string }): Promise<GlanceImage[]> {
    const response = await this.request('GET', `/v2/images?name=${encodeURIComponent(filter.name)}`);
    return ((await response.json()) as { images: GlanceImage[] }).images;
  }

  /** The image's data; its bytes come as they arrive. */
  async download(imageId: string): Promise<Readable> {
    const response = await this.request('GET', `/v2/images/${encodeURIComponent(imageId)}/file`);
    if (response.status === 204 || !response.body) throw new ImageApiError(`Image ${imageId} has no data`);
    return Readable.fromWeb(response.body as ReadableStream<Uint8Array>);
  }

  async create(fields: Readonly<Record<string, unknown>>): Promise<GlanceImage> {
    return (await this.request('POST', '/v2/images', {
      body: JSON.stringify(fields),
      type: 'application/json',
    }).then((r) => r.json())) as GlanceImage;
  }

  /** Streams `data` as the image's file (Glance's `PUT /v2/images/{id}/file`). */
  async upload(imageId: string, data: () => Readable): Promise<void> {
    await this.request('PUT', `/v2/images/${encodeURIComponent(imageId)}/file`, {
      body: data,
      type: 'application/octet-stream',
    });
  }

  async delete(imageId: string): Promise<void> {
    await this.request('DELETE', `/v2/images/${encodeURIComponent(imageId)}`);
  }

  private async request(
    method: string,
    path: string,
    payload?: { body: string | (() => Readable); type: string },
  ): Promise<Response> {
    let response = await this.fetch(method, path, false, payload);
    if (response.status === 401) response = await this.fetch(method, path, true, payload);
    if (response.status === 404) throw new NotFoundError(`The image API has no ${path}`);
    if (response.status === 400 || response.status === 409 || response.status === 413) {
      throw new InvalidInputError(
        `The image API refused ${method} ${path} (${response.status}): ${(await response.text()).slice(0, 200)}`,
      );
    }
    if (!response.ok) {
      throw new ImageApiError(`The image API answered ${response.status} to ${method} ${path}`, {
        retryable: response.status >= 500,
      });
    }
    return response;
  }

  private async fetch(
    method: string,
    path: string,
    renew: boolean,
    payload?: { body: string | (() => Readable); type: string },
  ): Promise<Response> {
    const token = await this.options.token(renew);
    const body = typeof payload?.body === 'function' ? Readable.toWeb(payload.body()) : payload?.body;
    return fetch(`${this.options.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        'X-Auth-Token': token,
        Accept: 'application/json',
        ...(payload ? { 'Content-Type': payload.type } : {}),
      },
      ...(body === undefined ? {} : { body }),
      // a streamed body is sent as it is read
      ...(typeof payload?.body === 'function' ? { duplex: 'half' } : {}),
    } as RequestInit).catch((error: unknown) => {
      throw new ImageApiError(`The image API at ${this.options.url} cannot be reached: ${String(error)}`, {
        retryable: true,
        cause: error,
      });
    });
  }
}
