import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { metadataBody, objectBody } from './validate';

/** A resource with Cinder's user metadata (volumes, snapshots): how to read it and change it. */
export interface MetadataResource {
  /** The resource's path under the prefix, with its id parameter: `volumes/:volume_id`. */
  readonly path: string;
  readonly tag: string;
  /** The resource the request names, as the caller may see it: its id and metadata. */
  read(
    req: FastifyRequest,
  ): Promise<{ readonly id: string; readonly metadata: Readonly<Record<string, string>> }>;
  /** Sets keys (all of them with `replace`) and removes `remove`; answers the metadata as it then is. */
  update(
    id: string,
    changes: { readonly set?: Record<string, string>; readonly replace?: boolean; readonly remove?: string },
  ): Promise<Readonly<Record<string, string>>>;
}

/** Cinder's metadata: the whole set (show, merge, replace) and one key (show, set, delete). */
export function registerMetadataRoutes(
  app: FastifyInstance,
  resource: MetadataResource,
  prefix: string,
): void {
  const base = `${prefix}/${resource.path}/metadata`;
  const tags = { schema: { tags: [resource.tag] } };
  const key = (req: FastifyRequest) => (req.params as { key: string }).key;

  app.get(base, tags, async (req) => ({ metadata: (await resource.read(req)).metadata }));
  app.post(base, tags, async (req) => {
    const { id } = await resource.read(req);
    const set = metadataBody('metadata', objectBody(req.body, 'metadata'));
    return { metadata: await resource.update(id, { set }) };
  });
  app.put(base, tags, async (req) => {
    const { id } = await resource.read(req);
    const set = metadataBody('metadata', objectBody(req.body, 'metadata'));
    return { metadata: await resource.update(id, { set, replace: true }) };
  });

  app.get(`${base}/:key`, tags, async (req) => {
    const { metadata } = await resource.read(req);
    const value = metadata[key(req)];
    if (value === undefined) throw new NotFoundError(`Metadata item was not found for key ${key(req)}.`);
    return { meta: { [key(req)]: value } };
  });
  app.put(`${base}/:key`, tags, async (req) => {
    const { id } = await resource.read(req);
    const meta = metadataBody('meta', objectBody(req.body, 'meta'));
    const keys = Object.keys(meta);
    if (keys.length !== 1) throw new InvalidInputError('Request body contains too many items.');
    if (keys[0] !== key(req)) throw new InvalidInputError('Request body and URI mismatch');
    await resource.update(id, { set: meta });
    return { meta };
  });
  app.delete(`${base}/:key`, tags, async (req, reply) => {
    const { id, metadata } = await resource.read(req);
    if (metadata[key(req)] === undefined) {
      throw new NotFoundError(`Metadata item was not found for key ${key(req)}.`);
    }
    await resource.update(id, { remove: key(req) });
    reply.code(200);
    return '';
  });
}
