import type { RequestContext } from '@basalt/context';
import type {
  AttachmentRepository,
  QuotaLimits,
  QuotaRepository,
  VolumeRecord,
  VolumeRepository,
} from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUuid, listQuery, objectBody, optionalText, positiveInt, quotaLimit } from './validate';
import { volumeDetail, volumeSummary } from './views';
import { requireAdmin, requireProject, type VolumeApi } from './volume-api';

export interface VolumeRouteDeps {
  readonly api: VolumeApi;
  readonly volumes: VolumeRepository;
  readonly attachments: AttachmentRepository;
  readonly quotas: QuotaRepository;
  readonly quotaDefaults: QuotaLimits;
  readonly maxLimit: number;
  readonly baseUrl: () => string;
  readonly context: (req: FastifyRequest) => RequestContext;
}

type Params = { project_id: string; volume_id: string; target_project_id: string };

const volumeBodySchema = {
  type: 'object',
  required: ['volume'],
  properties: {
    volume: {
      type: 'object',
      required: ['size'],
      properties: {
        size: { description: 'Size in GiB: an integer of at least 1 (or a string of digits).' },
        name: { type: ['string', 'null'], maxLength: 255 },
        description: { type: ['string', 'null'], maxLength: 255 },
        availability_zone: { type: ['string', 'null'] },
      },
    },
  },
} as const;

/**
 * Cinder v3's volume, action and quota-set resources, under `/v3/{project_id}` and (as Cinder 3.67
 * allows) under `/v3` with the project taken from the token.
 */
export function registerVolumeRoutes(app: FastifyInstance, deps: VolumeRouteDeps): void {
  for (const prefix of ['/v3/:project_id', '/v3']) registerUnder(app, deps, prefix);
}

function registerUnder(app: FastifyInstance, deps: VolumeRouteDeps, prefix: string): void {
  const project = (req: FastifyRequest) => requireProject(deps.context(req));
  const links = (req: FastifyRequest) => (id: string) => [
    { rel: 'self', href: `${deps.baseUrl()}/v3/${project(req)}/volumes/${id}` },
    { rel: 'bookmark', href: `${deps.baseUrl()}/${project(req)}/volumes/${id}` },
  ];
  const volumeId = (req: FastifyRequest) => {
    const id = (req.params as Params).volume_id;
    if (!isUuid(id)) throw new NotFoundError(`Volume ${id} could not be found.`);
    return id;
  };
  const detail = async (req: FastifyRequest, volume: VolumeRecord) =>
    volumeDetail(volume, await deps.attachments.live(volume.id), links(req), deps.context(req).isAdmin);

  app.post(
    `${prefix}/volumes`,
    { schema: { body: volumeBodySchema, tags: ['volumes'] } },
    async (req, reply) => {
      const body = objectBody(req.body, 'volume');
      const zone = optionalText('availability_zone', body.availability_zone);
      if (body.volume_type !== undefined && body.volume_type !== null) {
        throw new NotFoundError(`Volume type ${String(body.volume_type)} could not be found.`);
      }
      const volume = await deps.api.create(deps.context(req), {
        size: positiveInt('size', body.size),
        name: optionalText('name', body.name ?? body.display_name) ?? null,
        description: optionalText('description', body.description ?? body.display_description) ?? null,
        availabilityZone: zone ?? null,
      });
      reply.code(202);
      return { volume: await detail(req, volume) };
    },
  );

  const list = (detailed: boolean) => async (req: FastifyRequest) => {
    const ctx = deps.context(req);
    const q = listQuery(req.query as Record<string, unknown>, deps.maxLimit);
    // as in Cinder, all_tenants widens an admin's view and is ignored for everyone else
    const acrossProjects = q.allTenants && ctx.isAdmin;
    const volumes = await deps.volumes.list(
      {
        ...(acrossProjects ? {} : { projectId: requireProject(ctx) }),
        ...(q.status ? { status: q.status } : {}),
        ...(q.name ? { name: q.name } : {}),
      },
      { limit: q.limit, sort: q.sort, ...(q.marker ? { marker: q.marker } : {}) },
    );
    const items = detailed
      ? await Promise.all(volumes.map((v) => detail(req, v)))
      : volumes.map((v) => volumeSummary(v, links(req)));
    const last = volumes.at(-1);
    const next =
      last && q.limit > 0 && volumes.length === q.limit
        ? [
            {
              rel: 'next',
              href: `${deps.baseUrl()}/v3/${project(req)}/volumes${detailed ? '/detail' : ''}?${nextQuery(req, q.limit, last.id)}`,
            },
          ]
        : [];
    return { volumes: items, ...(next.length ? { volumes_links: next } : {}) };
  };
  app.get(`${prefix}/volumes`, { schema: { tags: ['volumes'] } }, list(false));
  app.get(`${prefix}/volumes/detail`, { schema: { tags: ['volumes'] } }, list(true));

  app.get(`${prefix}/volumes/:volume_id`, { schema: { tags: ['volumes'] } }, async (req) => ({
    volume: await detail(req, await deps.api.get(deps.context(req), volumeId(req))),
  }));

  app.put(`${prefix}/volumes/:volume_id`, { schema: { tags: ['volumes'] } }, async (req) => {
    const ctx = deps.context(req);
    const id = volumeId(req);
    await deps.api.get(ctx, id);
    const body = objectBody(req.body, 'volume');
    // null clears a field, so "given as null" and "not given" must stay apart
    const name = optionalText('name', 'name' in body ? body.name : body.display_name);
    const description = optionalText(
      'description',
      'description' in body ? body.description : body.display_description,
    );
    if (name === undefined && description === undefined) {
      throw new InvalidInputError('Nothing to update: give name and/or description.');
    }
    const volume = await deps.volumes.rename(id, {
      ...(name !== undefined ? { displayName: name } : {}),
      ...(description !== undefined ? { displayDescription: description } : {}),
    });
    return { volume: await detail(req, volume) };
  });

  app.delete(`${prefix}/volumes/:volume_id`, { schema: { tags: ['volumes'] } }, async (req, reply) => {
    await deps.api.delete(deps.context(req), volumeId(req));
    reply.code(202);
    return '';
  });

  app.post(`${prefix}/volumes/:volume_id/action`, { schema: { tags: ['volumes'] } }, async (req, reply) => {
    const ctx = deps.context(req);
    const id = volumeId(req);
    const body = req.body;
    if (typeof body !== 'object' || body === null || Object.keys(body).length !== 1) {
      throw new InvalidInputError('An action body names exactly one action.');
    }
    const [action] = Object.keys(body);
    if (action === 'os-extend') {
      const args = objectBody(body, 'os-extend');
      await deps.api.extend(ctx, id, positiveInt('new_size', args.new_size));
    } else if (action === 'os-reset_status') {
      const args = objectBody(body, 'os-reset_status');
      if (typeof args.status !== 'string') throw new InvalidInputError('os-reset_status needs a status.');
      await deps.api.resetStatus(
        ctx,
        id,
        args.status,
        typeof args.attach_status === 'string' ? args.attach_status : undefined,
      );
    } else {
      throw new InvalidInputError(`There is no such action: ${action}`);
    }
    reply.code(202);
    return '';
  });

  registerQuotaRoutes(app, deps, prefix);
}

/** The same list request (filters and sort kept) from after `marker`. */
function nextQuery(req: FastifyRequest, limit: number, marker: string): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(req.query as Record<string, unknown>)) {
    if (typeof value === 'string' && key !== 'marker' && key !== 'limit') query.set(key, value);
  }
  query.set('limit', String(limit));
  query.set('marker', marker);
  return query.toString();
}

function registerQuotaRoutes(app: FastifyInstance, deps: VolumeRouteDeps, prefix: string): void {
  const target = (req: FastifyRequest) => {
    const ctx = deps.context(req);
    const project = (req.params as Params).target_project_id;
    if (!ctx.isAdmin && project !== requireProject(ctx)) requireAdmin(ctx);
    return project;
  };
  const show = async (project: string, usage: boolean) => {
    const limits = await deps.quotas.limits(project, deps.quotaDefaults);
    if (!usage) return { quota_set: { id: project, ...limits } };
    const used = await deps.quotas.usage(project);
    const entry = (limit: number, inUse: number) => ({ limit, in_use: inUse, reserved: 0, allocated: 0 });
    return {
      quota_set: {
        id: project,
        volumes: entry(limits.volumes, used.volumes),
        gigabytes: entry(limits.gigabytes, used.gigabytes),
      },
    };
  };
  app.get(`${prefix}/os-quota-sets/:target_project_id`, { schema: { tags: ['quotas'] } }, async (req) =>
    show(target(req), ['1', 'true', 'True'].includes(String((req.query as { usage?: string }).usage))),
  );
  app.get(
    `${prefix}/os-quota-sets/:target_project_id/defaults`,
    { schema: { tags: ['quotas'] } },
    async (req) => {
      target(req);
      return { quota_set: { id: (req.params as Params).target_project_id, ...deps.quotaDefaults } };
    },
  );
  app.put(`${prefix}/os-quota-sets/:target_project_id`, { schema: { tags: ['quotas'] } }, async (req) => {
    requireAdmin(deps.context(req));
    const project = (req.params as Params).target_project_id;
    const body = objectBody(req.body, 'quota_set');
    const values: { -readonly [K in keyof QuotaLimits]?: number } = {};
    for (const [key, value] of Object.entries(body)) {
      if (key === 'volumes' || key === 'gigabytes') values[key] = quotaLimit(key, value);
      else if (key !== 'tenant_id' && key !== 'id')
        throw new InvalidInputError(`Bad key(s) in quota set: ${key}`);
    }
    await deps.quotas.set(project, values);
    return show(project, false);
  });
  app.delete(
    `${prefix}/os-quota-sets/:target_project_id`,
    { schema: { tags: ['quotas'] } },
    async (req, reply) => {
      requireAdmin(deps.context(req));
      await deps.quotas.reset((req.params as Params).target_project_id);
      reply.code(200);
      return '';
    },
  );
}
