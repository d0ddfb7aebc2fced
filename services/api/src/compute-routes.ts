import type { RequestContext } from '@basalt/context';
import type { InstanceActionRepository, InstanceRecord, InstanceRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerActionRoute } from './action-routes';
import type { ComputeApi } from './compute-api';
import {
  flavorDetail,
  flavorSummary,
  serverCreated,
  serverDetail,
  serverSummary,
  type ViewContext,
  volumeAttachment,
} from './compute-views';
import { FLAVORS, findFlavor } from './flavors';
import { registerInstanceActionRoutes } from './instance-action-routes';
import { nextQuery } from './list-query';
import { parseServerList } from './server-list-query';
import { isUuid, objectBody, optionalText } from './validate';
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
  const render = async (req: FastifyRequest, instance: InstanceRecord) =>
    serverDetail(view(req), instance, findFlavor(instance.flavorId), await deps.api.mappingsOf(instance.id));
  const detail = async (req: FastifyRequest, id: string) =>
    render(req, await deps.api.get(deps.context(req), id));

  app.get(`${prefix}/flavors`, async (req) => ({ flavors: FLAVORS.map((f) => flavorSummary(view(req), f)) }));
  app.get(`${prefix}/flavors/detail`, async (req) => ({
    flavors: FLAVORS.map((f) => flavorDetail(view(req), f)),
  }));
  app.get(`${prefix}/flavors/:flavor_id`, async (req) => ({ flavor: flavorDetail(view(req), flavor(req)) }));

  app.post(`${prefix}/servers`, async (req, reply) => {
    const body = objectBody(req.body, 'server');
    for (const key of Object.keys(body)) {
      if (!CREATE_KEYS.has(key)) {
        throw new InvalidInputError(
          `Invalid input for field/attribute server. Additional properties are not allowed ('${key}' was unexpected)`,
        );
      }
    }
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
    const instance = await deps.api.create(deps.context(req), { name, flavorRef, imageRef });
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
    const last = instances.at(-1);
    if (!last || instances.length < q.page.limit) return { servers };
    // nova's next link: its own URL (with the project only when the request named it), the
    // query's parameters in name order, the marker replaced
    const path = req.url.split('?')[0] ?? '';
    const project = ctx.projectId && path.includes(ctx.projectId) ? `/${ctx.projectId}` : '';
    const collection = detailed ? 'servers/detail' : 'servers';
    const href = `${deps.baseUrl()}/v2.1${project}/${collection}?${nextQuery(query, last.id, true)}`;
    return { servers, servers_links: [{ rel: 'next', href }] };
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
    volumeAttachments: (await deps.api.mappings(deps.context(req), serverId(req))).map(volumeAttachment),
  }));
  app.get(`${attachments}/:volume_id`, async (req) => {
    const id = serverId(req);
    await deps.api.get(deps.context(req), id);
    return { volumeAttachment: volumeAttachment(await deps.api.mapping(id, volumeId(req))) };
  });
  app.post(attachments, async (req) => {
    const body = objectBody(req.body, 'volumeAttachment');
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
    const mapping = await deps.api.attachVolume(deps.context(req), serverId(req), volume, device);
    return { volumeAttachment: volumeAttachment(mapping) };
  });
  app.delete(`${attachments}/:volume_id`, async (req, reply) => {
    await deps.api.detachVolume(deps.context(req), serverId(req), volumeId(req));
    reply.code(202);
    return '';
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
