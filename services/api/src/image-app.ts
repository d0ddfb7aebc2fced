import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { IMAGE_STATES, type ImageRecord, type ImageRepository, type ImageViewer } from '@basalt/db';
import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  OverLimitError,
  UnsupportedMediaTypeError,
} from '@basalt/errors';
import { ImageTooLargeError, storeImage } from '@basalt/images';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerAuthHook } from './auth-hook';
import { imageView } from './compute-views';
import { createHttpApp } from './http';
import { checkTag, IMAGE_TAG_QUOTA, imageFields, imagePatch, tagLimitExceeded } from './image-body';
import { imageSchema, imagesSchema } from './image-schemas';
import { type ListenerOptions, registerPolicy } from './policy-hook';
import { IMAGE_ROUTE_POLICIES } from './policy-routes';
import { isUuid } from './validate';

export interface ImageAppDeps {
  readonly images: ImageRepository;
  /** Where the image files are (`[glance_store] filesystem_store_datadir`). */
  readonly dataDir: string;
  /** Largest upload stored (`[glance_store] image_size_cap`). */
  readonly sizeCap: number;
  readonly baseUrl: () => string;
}

/** Glance's JSON-patch media types: 2.1's `{op, path, value}`, 2.0's `{"replace": path, value}`. */
const PATCH_TYPES = [
  'application/openstack-images-v2.1-json-patch',
  'application/openstack-images-v2.0-json-patch',
];

const { beginUpload, finishUpload, failUpload, deactivate, reactivate, remove } = IMAGE_STATES.movesOf('api');

/**
 * The image API (Glance v2 subset): version discovery and the image schemas; images created,
 * listed, shown, changed (JSON patch), tagged, deactivated and reactivated, deleted; their data uploaded (streamed into the image
 * store, with its size and checksums) and downloaded. A project sees public and community images
 * and its own; only the owner (or an admin) changes an image.
 */
export function buildImageApp(options: ListenerOptions, deps: ImageAppDeps): FastifyInstance {
  // a tag in the path is up to 255 characters, each up to 12 once percent-encoded: the schema
  // check, not the router, answers for a longer one
  const app = createHttpApp(options.log, options.bodyLimit, options.rateLimiter, 255 * 12 + 1);
  // the data is streamed to the store, which has its own cap: the body limit is for JSON
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(PATCH_TYPES, { parseAs: 'string' }, json);
  registerAuthHook(app, {
    authenticator: options.authenticator,
    protects: (route) => route.startsWith('/v2/'),
  });
  registerPolicy(app, options.policy, IMAGE_ROUTE_POLICIES);
  const versions = () => ({
    versions: ['2.9', '2.8', '2.7', '2.6', '2.5', '2.4', '2.3', '2.2', '2.1', '2.0'].map((v, n) => ({
      id: `v${v}`,
      status: n === 0 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href: `${deps.baseUrl()}/v2/` }],
    })),
  });
  app.get('/', async (_req, reply) => {
    reply.code(300);
    return versions();
  });
  app.get('/versions', async () => versions());

  const viewer = (req: FastifyRequest): ImageViewer => ({
    projectId: req.basalt.projectId ?? null,
    isAdmin: req.basalt.isAdmin,
  });
  const visible = async (req: FastifyRequest) => {
    const id = (req.params as { image_id: string }).image_id;
    const image = isUuid(id) ? await deps.images.findVisible(id, viewer(req)) : undefined;
    if (!image) throw new NotFoundError(`No image found with ID ${id}`);
    return image;
  };
  /** An image the caller may change: its own, or any for an admin (another's is a 403, as Glance). */
  const owned = async (req: FastifyRequest, refusal = 'You are not permitted to modify image') => {
    const image = await visible(req);
    if (!req.basalt.isAdmin && image.owner !== req.basalt.projectId) {
      throw new ForbiddenError(`${refusal} ${image.id}.`);
    }
    return image;
  };
  const gone = (image: ImageRecord) => new NotFoundError(`No image found with ID ${image.id}`);

  app.get('/v2/images', async (req) => {
    const query = req.query as Record<string, unknown>;
    const text = (key: string) => (typeof query[key] === 'string' ? (query[key] as string) : undefined);
    // repeated for several, as Glance takes them: an image has them all
    const tags = [query.tag ?? []].flat().map((tag) => String(tag).trim());
    const filter = { name: text('name'), status: text('status'), visibility: text('visibility'), tags };
    const images = await deps.images.listVisible(
      viewer(req),
      Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined)),
    );
    return { images: images.map(imageView), first: '/v2/images', schema: '/v2/schemas/images' };
  });

  app.post('/v2/images', async (req, reply) => {
    const fields = imageFields(req.body, { isAdmin: req.basalt.isAdmin });
    const requestedId = (req.body as Record<string, unknown>).id;
    if (requestedId !== undefined && (typeof requestedId !== 'string' || !isUuid(requestedId))) {
      throw new InvalidInputError(`Invalid id ${JSON.stringify(requestedId)}: not a UUID.`);
    }
    const image = await deps.images
      .create({ ...fields, id: requestedId ?? randomUUID(), owner: req.basalt.projectId ?? null })
      .catch((error: unknown) => {
        if ((error as { code?: string }).code === '23505')
          throw new ConflictError(`Image with identifier ${String(requestedId)} already exists.`);
        throw error;
      });
    reply.code(201).header('Location', `${deps.baseUrl()}/v2/images/${image.id}`);
    return imageView(image);
  });

  app.get('/v2/images/:image_id', async (req) => imageView(await visible(req)));

  app.patch('/v2/images/:image_id', async (req) => {
    if (!PATCH_TYPES.includes(String(req.headers['content-type']).split(';')[0]?.trim() ?? '')) {
      throw new UnsupportedMediaTypeError(`Unsupported Content-Type; use ${PATCH_TYPES[0]}.`);
    }
    const image = await owned(req);
    const changed = await deps.images.update(
      image.id,
      imagePatch(image, req.body, { isAdmin: req.basalt.isAdmin }),
    );
    if (!changed) throw gone(image);
    return imageView(changed);
  });

  app.delete('/v2/images/:image_id', async (req, reply) => {
    const image = await owned(req);
    if (image.protected) throw new ForbiddenError(`Image ${image.id} is protected and cannot be deleted.`);
    const deleted = await deps.images.transition(image.id, remove);
    if (!deleted) throw gone(image);
    if (image.fileName) await rm(join(deps.dataDir, image.fileName), { force: true });
    reply.code(204);
    return '';
  });

  for (const [action, move] of [
    ['deactivate', deactivate],
    ['reactivate', reactivate],
  ] as const) {
    app.post(`/v2/images/:image_id/actions/${action}`, async (req, reply) => {
      const image = await owned(req);
      // again on an image already there is no change (Glance answers 204 too)
      if (image.status !== move.to && !(await deps.images.transition(image.id, move))) {
        throw new ConflictError(`Not allowed to ${action} image in status '${image.status}'.`);
      }
      reply.code(204);
      return '';
    });
  }

  app.put('/v2/images/:image_id/tags/:tag_value', async (req, reply) => {
    const tag = checkTag((req.params as { tag_value: string }).tag_value);
    const image = await owned(req, 'Not allowed to update tags for image');
    const added = await deps.images.addTag(image.id, tag, IMAGE_TAG_QUOTA);
    if (!added) throw gone(image);
    if (added.quotaReached) {
      throw new OverLimitError(
        `Image tag limit exceeded for image ${image.id}: ${tagLimitExceeded(IMAGE_TAG_QUOTA + 1)}:`,
      );
    }
    reply.code(204);
    return '';
  });

  app.delete('/v2/images/:image_id/tags/:tag_value', async (req, reply) => {
    const image = await owned(req, 'Not allowed to delete tags for image');
    const tag = (req.params as { tag_value: string }).tag_value;
    if (!(await deps.images.removeTag(image.id, tag)))
      throw new NotFoundError('The resource could not be found.');
    reply.code(204);
    return '';
  });

  app.get('/v2/schemas/image', async () => imageSchema());
  app.get('/v2/schemas/images', async () => imagesSchema());

  const octetStream = async (req: FastifyRequest) => {
    if (String(req.headers['content-type']).split(';')[0]?.trim() !== 'application/octet-stream') {
      throw new UnsupportedMediaTypeError('Unsupported Content-Type; use application/octet-stream.');
    }
  };
  // checked before the body is parsed: a JSON body is not image data
  app.put('/v2/images/:image_id/file', { preParsing: octetStream }, async (req, reply) => {
    const image = await owned(req);
    if (!image.diskFormat || !image.containerFormat) {
      throw new InvalidInputError(
        'Properties disk_format, container_format must be set prior to saving data.',
      );
    }
    const saving = await deps.images.transition(image.id, beginUpload);
    if (!saving)
      throw new ConflictError(`Image status transition from ${image.status} to saving is not allowed`);
    let stored: Awaited<ReturnType<typeof storeImage>>;
    try {
      stored = await storeImage(deps.dataDir, image.id, req.body as Readable, deps.sizeCap);
    } catch (error) {
      // the rest of the body is not read: the connection goes with this answer
      reply.header('Connection', 'close');
      await deps.images.transition(image.id, failUpload);
      if (error instanceof ImageTooLargeError) throw new OverLimitError(error.message);
      throw error;
    }
    if (!(await deps.images.transition(image.id, finishUpload, stored))) {
      // deleted while its data arrived: the data goes too
      await rm(join(deps.dataDir, stored.fileName), { force: true });
      throw new ConflictError(`Image ${image.id} was deleted during the upload.`);
    }
    reply.code(204);
    return '';
  });

  app.get('/v2/images/:image_id/file', async (req, reply) => {
    const image = await visible(req);
    if (image.status === 'deactivated' && !req.basalt.isAdmin) {
      throw new ForbiddenError('The requested image has been deactivated. Image data download is forbidden.');
    }
    if ((image.status !== 'active' && image.status !== 'deactivated') || !image.fileName) {
      reply.code(204);
      return '';
    }
    reply
      .header('Content-Type', 'application/octet-stream')
      .header('Content-Length', String(image.size))
      .header('Content-MD5', image.checksum ?? '');
    return reply.send(createReadStream(join(deps.dataDir, image.fileName)));
  });
  return app;
}
