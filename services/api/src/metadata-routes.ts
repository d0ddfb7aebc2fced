import type { VolumeRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { metadataBody, objectBody } from './validate';
import type { VolumeApi } from './volume-api';
import type { RouteContext } from './volume-routes';

/** Cinder's volume metadata: the whole set (show, merge, replace) and one key (show, set, delete). */
export function registerMetadataRoutes(
  app: FastifyInstance,
  deps: RouteContext & {
    readonly api: VolumeApi;
    readonly volumes: VolumeRepository;
    readonly volumeId: (req: FastifyRequest) => string;
  },
  prefix: string,
): void {
  const base = `${prefix}/volumes/:volume_id/metadata`;
  const tags = { schema: { tags: ['volumes'] } };
  const volume = (req: FastifyRequest) => deps.api.get(deps.context(req), deps.volumeId(req));
  const key = (req: FastifyRequest) => (req.params as { key: string }).key;

  app.get(base, tags, async (req) => ({ metadata: (await volume(req)).metadata }));
  app.post(base, tags, async (req) => {
    const { id } = await volume(req);
    const set = metadataBody('metadata', objectBody(req.body, 'metadata'));
    return { metadata: (await deps.volumes.updateMetadata(id, { set })).metadata };
  });
  app.put(base, tags, async (req) => {
    const { id } = await volume(req);
    const set = metadataBody('metadata', objectBody(req.body, 'metadata'));
    return { metadata: (await deps.volumes.updateMetadata(id, { set, replace: true })).metadata };
  });

  app.get(`${base}/:key`, tags, async (req) => {
    const { metadata } = await volume(req);
    const value = metadata[key(req)];
    if (value === undefined) throw new NotFoundError(`Metadata item was not found for key ${key(req)}.`);
    return { meta: { [key(req)]: value } };
  });
  app.put(`${base}/:key`, tags, async (req) => {
    const { id } = await volume(req);
    const meta = metadataBody('meta', objectBody(req.body, 'meta'));
    const keys = Object.keys(meta);
    if (keys.length !== 1) throw new InvalidInputError('Request body contains too many items.');
    if (keys[0] !== key(req)) throw new InvalidInputError('Request body and URI mismatch');
    await deps.volumes.updateMetadata(id, { set: meta });
    return { meta };
  });
  app.delete(`${base}/:key`, tags, async (req, reply) => {
    const { id, metadata } = await volume(req);
    if (metadata[key(req)] === undefined) {
      throw new NotFoundError(`Metadata item was not found for key ${key(req)}.`);
    }
    await deps.volumes.updateMetadata(id, { remove: key(req) });
    reply.code(200);
    return '';
  });
}
