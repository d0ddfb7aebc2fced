import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ImageRepository } from '@basalt/db';
import { NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerAuthHook } from './auth-hook';
import { imageView } from './compute-views';
import { createHttpApp } from './http';
import { type ListenerOptions, registerPolicy } from './policy-hook';
import { IMAGE_ROUTE_POLICIES } from './policy-routes';
import { isUuid } from './validate';

export interface ImageAppDeps {
  readonly images: ImageRepository;
  /** Where the image files are (`[glance_store] filesystem_store_datadir`). */
  readonly dataDir: string;
  readonly baseUrl: () => string;
}

/**
 * The image API (Glance v2 subset): version discovery, list, show and file download of the
 * images operators registered with `basalt image create`.
 */
export function buildImageApp(options: ListenerOptions, deps: ImageAppDeps): FastifyInstance {
  const app = createHttpApp(options.log, options.bodyLimit, options.rateLimiter);
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

  const visible = async (req: FastifyRequest) => {
    const id = (req.params as { image_id: string }).image_id;
    const image = isUuid(id) ? await deps.images.findVisible(id, req.basalt.projectId ?? null) : undefined;
    if (!image) throw new NotFoundError(`No image found with ID ${id}`);
    return image;
  };

  app.get('/v2/images', async (req) => {
    const query = req.query as Record<string, unknown>;
    const name = typeof query.name === 'string' ? query.name : undefined;
    const images = await deps.images.listVisible(req.basalt.projectId ?? null, name ? { name } : {});
    return { images: images.map(imageView), first: '/v2/images', schema: '/v2/schemas/images' };
  });
  app.get('/v2/images/:image_id', async (req) => imageView(await visible(req)));
  app.get('/v2/images/:image_id/file', async (req, reply) => {
    const image = await visible(req);
    if (image.status !== 'active' || !image.fileName) {
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
