import type { RequestContext } from '@basalt/context';
import type { InstanceActionRepository, InstanceRecord, InstanceRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerActionRoute } from './action-routes';
import type { ComputeApi } from './compute-api';
import { bodyError, checkKeys, checkTag, pyRepr, pyValue } from './compute-query';
import {
  collectionLinks,
  flavorDetail,
  flavorSummary,
  serverCreated,
  serverDetail,
  serverSummary,
  type ViewContext,
  volumeAttachment,
} from './compute-views';
import { listFlavors } from './flavor-list-query';
import { findFlavor } from './flavors';
import { registerInstanceActionRoutes } from './instance-action-routes';
import { parseServerList } from './server-list-query';
import { isUuid, objectBody, optionalText } from './validate';
import { atLeast } from './versions';
import { requireProject } from './volume-api';

export interface ComputeRouteDeps {
  readonly api: ComputeApi;
  readonly instances: InstanceRepository;
  readonly actions: InstanceActionRepository;
  readonly maxLimit: number;
  readonly nameTemplate: string;
  readonly baseUrl: () => string;
  readonly context: (req: FastifyRequest) => RequestContext;
  /** Checks a policy rule beyond the route's own (nova's get_all_tenants), or throws its 403. */
  readonly authorize: (req: FastifyRequest, rule: string) => void;
  /** Whether a policy rule lets the caller act on a project's resource (nova's context.can, fatal=False). */
  readonly can: (req: FastifyRequest, rule: string, projectId: string) => boolean;
}

type Params = { server_id: string; flavor_id: string; volume_id: string };

/** Keys of a server create that Basalt takes (anything else is refused, as nova's schema does). */
const CREATE_KEYS = new Set([
  'name',
  'imageRef',
  'flavorRef',
  'networks',
  'min_count',
  'max_count',
  'metadata',
]);
/** 2.52 lets a create give the server's tags, 2.63 its trusted image certificates. */
const CREATE_KEYS_V252 = new Set([...CREATE_KEYS, 'tags']);
const CREATE_KEYS_V263 = new Set([...CREATE_KEYS_V252, 'trusted_image_certificates']);
/** nova's parameter_types.trusted_certs: at most 50 ids. */
const MAX_TRUSTED_CERTS = 50;
/** nova's instance.MAX_TAG_COUNT. */
const MAX_TAGS = 50;
const ATTACH_KEYS = new Set(['volumeId', 'device']);
/** 2.49 lets an attach tag the device. */
const ATTACH_KEYS_V249 = new Set([...ATTACH_KEYS, 'tag']);

/**
 * Nova v2.1's flavors, servers, server actions, volume attachments, external events and instance
 * actions, under `/v2.1/{project_id}`
 * and (as nova 2.18 allows) under `/v2.1` with the project taken from the token.
 */
export function registerComputeRoutes(app: FastifyInstance, deps: ComputeRouteDeps): void {
  for (const prefix of ['/v2.1/:project_id', '/v2.1']) {
    registerUnder(app, deps, prefix);
    registerInstanceActionRoutes(app, deps, prefix);
  }
}

function registerUnder(app: FastifyInstance, deps: ComputeRouteDeps, prefix: string): void {
  const view = (req: FastifyRequest): ViewContext => {
    const ctx = deps.context(req);
    return {
      baseUrl: deps.baseUrl(),
      projectId: requireProject(ctx),
      version: req.computeVersion,
      isAdmin: ctx.isAdmin,
      nameTemplate: deps.nameTemplate,
      flavorExtraSpecs: deps.can(req, 'os_compute_api:os-flavor-extra-specs:index', requireProject(ctx)),
    };
  };
  const serverId = (req: FastifyRequest) => {
    const id = (req.params as Params).server_id;
    if (!isUuid(id)) throw new NotFoundError(`Instance ${id} could not be found.`);
    return id;
  };
  const volumeId = (req: FastifyRequest) => {
    const id = (req.params as Params).volume_id;
    if (!isUuid(id)) throw new NotFoundError(`Volume ${id} could not be found.`);
    return id;
  };
  const flavor = (req: FastifyRequest) => {
    const id = (req.params as Params).flavor_id;
    const found = findFlavor(id);
    if (!found) throw new NotFoundError(`Flavor ${id} could not be found.`);
    return found;
  };
  const render = async (req: FastifyRequest, instance: InstanceRecord, alone = false) =>
    serverDetail(
      view(req),
      instance,
      findFlavor(instance.flavorId),
      await deps.api.mappingsOf(instance.id),
      alone,
    );
  const detail = async (req: FastifyRequest, id: string) =>
    render(req, await deps.api.get(deps.context(req), id), true);

  const flavorList = (detailed: boolean) => async (req: FastifyRequest) => {
    const query = req.query as Record<string, unknown>;
    const { flavors, limit } = listFlavors(query, deps.maxLimit, deps.context(req).isAdmin);
    const v = view(req);
    const body = { flavors: flavors.map((f) => (detailed ? flavorDetail(v, f) : flavorSummary(v, f))) };
    const collection = detailed ? 'flavors/detail' : 'flavors';
    const ids = flavors.map((f) => f.id);
    const links = collectionLinks(v, req.url, collection, query, ids, limit);
    return links ? { ...body, flavors_links: links } : body;
  };
  app.get(`${prefix}/flavors`, flavorList(false));
  app.get(`${prefix}/flavors/detail`, flavorList(true));
  app.get(`${prefix}/flavors/:flavor_id`, async (req) => ({ flavor: flavorDetail(view(req), flavor(req)) }));

  app.post(`${prefix}/servers`, async (req, reply) => {
    const body = objectBody(req.body, 'server');
    const version = req.computeVersion;
    const keys = atLeast(version, '2.63')
      ? CREATE_KEYS_V263
      : atLeast(version, '2.52')
        ? CREATE_KEYS_V252
        : CREATE_KEYS;
    checkKeys('server', body, keys);
    const name = optionalText('name', body.name);
    if (!name || name.trim().length === 0)
      throw new InvalidInputError('Invalid input for field/attribute name: a name is required.');
    const flavorRef = typeof body.flavorRef === 'number' ? String(body.flavorRef) : body.flavorRef;
    if (typeof flavorRef !== 'string' || flavorRef === '') {
      throw new InvalidInputError('Invalid input for field/attribute flavorRef: a flavor id is required.');
    }
    const imageRef = body.imageRef;
    if (typeof imageRef !== 'string' || !isUuid(imageRef)) {
      throw new InvalidInputError(`Invalid imageRef provided: ${JSON.stringify(imageRef ?? null)}.`);
    }
    checkNetworks(body.networks);
    for (const count of ['min_count', 'max_count'] as const) {
      if (body[count] !== undefined && body[count] !== 1 && body[count] !== '1') {
        throw new InvalidInputError(
          `Invalid input for field/attribute ${count}: only 1 server per request is supported.`,
        );
      }
    }
    if (
      body.metadata !== undefined &&
      (typeof body.metadata !== 'object' || body.metadata === null || Object.keys(body.metadata).length > 0)
    ) {
      throw new InvalidInputError(
        'Invalid input for field/attribute metadata: server metadata is not supported.',
      );
    }
    const tags = body.tags === undefined ? undefined : serverTags(body.tags);
    const trustedCerts = trustedCertificates(body.trusted_image_certificates);
    // nova's extra rule for those who give certificates
    if (trustedCerts) deps.authorize(req, 'os_compute_api:servers:create:trusted_certs');
    const instance = await deps.api.create(deps.context(req), {
      name,
      flavorRef,
      imageRef,
      ...(tags ? { tags } : {}),
      ...(trustedCerts ? { trustedCerts } : {}),
    });
    reply.code(202);
    return { server: serverCreated(view(req), instance) };
  });

  const list = (detailed: boolean) => async (req: FastifyRequest) => {
    const ctx = deps.context(req);
    const query = req.query as Record<string, unknown>;
    const q = parseServerList(query, deps.maxLimit, { isAdmin: ctx.isAdmin, version: req.computeVersion });
    if (q.allTenants) {
      deps.authorize(req, `os_compute_api:servers:${detailed ? 'detail' : 'index'}:get_all_tenants`);
    }
    // across projects an admin may name one; without all_tenants nova ignores tenant_id
    const projectId = q.allTenants ? q.projectId : requireProject(ctx);
    const instances = q.empty
      ? []
      : await deps.instances.list({ ...q.filter, ...(projectId !== undefined ? { projectId } : {}) }, q.page);
    const servers = detailed
      ? await Promise.all(instances.map((i) => render(req, i)))
      : instances.map((i) => serverSummary(view(req), i));
    const collection = detailed ? 'servers/detail' : 'servers';
    const ids = instances.map((i) => i.id);
    const links = collectionLinks(view(req), req.url, collection, query, ids, q.page.limit);
    return links ? { servers, servers_links: links } : { servers };
  };
  app.get(`${prefix}/servers`, list(false));
  app.get(`${prefix}/servers/detail`, list(true));
  app.get(`${prefix}/servers/:server_id`, async (req) => ({ server: await detail(req, serverId(req)) }));

  app.delete(`${prefix}/servers/:server_id`, async (req, reply) => {
    await deps.api.delete(deps.context(req), serverId(req));
    reply.code(204);
    return '';
  });

  registerActionRoute(app, `${prefix}/servers/:server_id/action`, {}, serverId, {
    reboot: async ({ target: id, req, args }) => {
      const { type } = args();
      if (type !== 'SOFT' && type !== 'HARD' && type !== 'soft' && type !== 'hard') {
        throw new InvalidInputError(
          `Invalid input for field/attribute type. Value: ${JSON.stringify(type ?? null)}. It must be SOFT or HARD.`,
        );
      }
      await deps.api.reboot(deps.context(req), id, type.toUpperCase() as 'SOFT' | 'HARD');
      return undefined;
    },
  });

  const attachments = `${prefix}/servers/:server_id/os-volume_attachments`;
  app.get(attachments, async (req) => ({
    volumeAttachments: (await deps.api.mappings(deps.context(req), serverId(req))).map((m) =>
      volumeAttachment(req.computeVersion, m),
    ),
  }));
  app.get(`${attachments}/:volume_id`, async (req) => {
    const id = serverId(req);
    await deps.api.get(deps.context(req), id);
    return {
      volumeAttachment: volumeAttachment(req.computeVersion, await deps.api.mapping(id, volumeId(req))),
    };
  });
  app.post(attachments, async (req) => {
    const body = objectBody(req.body, 'volumeAttachment');
    checkKeys('volumeAttachment', body, atLeast(req.computeVersion, '2.49') ? ATTACH_KEYS_V249 : ATTACH_KEYS);
    const volume = body.volumeId;
    if (typeof volume !== 'string' || !isUuid(volume)) {
      throw new InvalidInputError(
        `Invalid input for field/attribute volumeId. Value: ${JSON.stringify(volume ?? null)}. It is not a UUID.`,
      );
    }
    const device = body.device === null || body.device === undefined ? undefined : body.device;
    if (device !== undefined && typeof device !== 'string') {
      throw new InvalidInputError('Invalid input for field/attribute device: must be a string.');
    }
    const tag = body.tag === undefined ? undefined : checkTag('tag', body.tag);
    const mapping = await deps.api.attachVolume(deps.context(req), serverId(req), volume, device, tag);
    return { volumeAttachment: volumeAttachment(req.computeVersion, mapping) };
  });
  app.delete(`${attachments}/:volume_id`, async (req, reply) => {
    await deps.api.detachVolume(deps.context(req), serverId(req), volumeId(req));
    reply.code(202);
    return '';
  });
}

/** A create's tags (nova's create_v252 schema: an array of tags, at most 50). */
function serverTags(tags: unknown): string[] {
  if (!Array.isArray(tags)) throw bodyError('tags', tags, `${pyValue(tags)} is not of type 'array'`);
  // jsonschema names an item by its index
  const checked = tags.map((tag: unknown, i) => checkTag(i, tag));
  if (tags.length > MAX_TAGS) throw bodyError('tags', tags, `${pyValue(tags)} is too long`);
  return checked;
}

/** A create's trusted image certificate ids (nova's parameter_types.trusted_certs); null is none. */
function trustedCertificates(certs: unknown): string[] | undefined {
  if (certs === undefined || certs === null) return undefined;
  const field = 'trusted_image_certificates';
  if (!Array.isArray(certs))
    throw bodyError(field, certs, `${pyValue(certs)} is not of type 'array', 'null'`);
  if (certs.length === 0) throw bodyError(field, certs, `${pyValue(certs)} should be non-empty`);
  if (certs.length > MAX_TRUSTED_CERTS) throw bodyError(field, certs, `${pyValue(certs)} is too long`);
  if (new Set(certs.map((c) => JSON.stringify(c))).size !== certs.length) {
    throw bodyError(field, certs, `${pyValue(certs)} has non-unique elements`);
  }
  return certs.map((cert: unknown, i) => {
    if (typeof cert !== 'string') throw bodyError(i, cert, `${pyValue(cert)} is not of type 'string'`);
    if (cert.length === 0) throw bodyError(i, cert, `${pyRepr(cert)} should be non-empty`);
    return cert;
  });
}

/** Servers get no network here: `auto`, `none` or no list at all are all the same, none. */
function checkNetworks(networks: unknown): void {
  if (networks === undefined || networks === 'auto' || networks === 'none') return;
  if (Array.isArray(networks) && networks.length === 0) return;
  throw new InvalidInputError(
    `Invalid input for field/attribute networks. Value: ${JSON.stringify(networks)}. Only "auto" and "none" are supported: Basalt gives servers no network.`,
  );
}
