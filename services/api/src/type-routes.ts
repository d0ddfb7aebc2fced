import type { TypeSortKey, VolumeTypeRecord, VolumeTypeRepository } from '@basalt/db';
import { DEFAULT_VOLUME_TYPE } from '@basalt/db';
import { ConflictError, InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { dictFilter, type ListSpec, parseList } from './list-query';
import { booleanParam, metadataBody, objectBody, optionalText } from './validate';
import { atLeast } from './versions';
import { requireAdmin } from './volume-api';
import type { RouteContext } from './volume-routes';

/** Extra specs a member may read (Cinder's USER_VISIBLE_EXTRA_SPECS); admins read all. */
const USER_VISIBLE_SPECS = ['RESKEY:availability_zones', 'multiattach', 'replication_enabled'];

/**
 * Cinder's volume types: CRUD, the default type, extra specs (whole and by key) and the access
 * lists of private types.
 */
export function registerTypeRoutes(
  app: FastifyInstance,
  deps: RouteContext & { readonly types: VolumeTypeRepository },
  prefix: string,
): void {
  const tags = { schema: { tags: ['types'] } };
  const base = `${prefix}/types`;
  // an admin sees every type; anyone else the public ones and those shared with the project
  const scope = (req: FastifyRequest) => (deps.context(req).isAdmin ? undefined : deps.project(req));
  const typeId = (req: FastifyRequest) => (req.params as { type_id: string }).type_id;
  const found = (req: FastifyRequest) => deps.types.get(typeId(req), scope(req));
  const admin = async (req: FastifyRequest) => {
    requireAdmin(deps.context(req));
    return deps.types.get(typeId(req), undefined);
  };
  /** `managed`: as create and update answer (Cinder's types_manage), every spec and no QoS id. */
  const view = (req: FastifyRequest, t: VolumeTypeRecord, managed = false) => {
    const isAdmin = deps.context(req).isAdmin && !managed;
    const specs =
      isAdmin || managed
        ? t.extraSpecs
        : Object.fromEntries(Object.entries(t.extraSpecs).filter(([k]) => USER_VISIBLE_SPECS.includes(k)));
    return {
      id: t.id,
      name: t.name,
      is_public: t.isPublic,
      description: t.description,
      extra_specs: specs,
      ...(isAdmin ? { qos_specs_id: null } : {}),
      'os-volume-type-access:is_public': t.isPublic,
    };
  };

  app.get(base, tags, async (req) => {
    const caller = deps.view(req);
    const q = parseList(req.query as Record<string, unknown>, TYPE_LIST, deps.maxLimit, caller);
    const { is_public, extra_specs, name, description, id } = q.filters;
    // a member lists the public types and those shared with the project, whatever is asked
    const isPublic = !caller.isAdmin || is_public === undefined ? true : publicFilter(is_public);
    // before 3.52 a member's only filter is is_public
    const specsAllowed = caller.isAdmin || atLeast(caller.version, '3.52');
    const specs =
      extra_specs === undefined || !specsAllowed ? undefined : dictFilter('extra_specs', extra_specs);
    // Cinder: a member filtering on a spec they may not read finds no type at all
    const hidden = !caller.isAdmin && Object.keys(specs ?? {}).some((k) => !USER_VISIBLE_SPECS.includes(k));
    if (q.matchesNothing || hidden) return { volume_types: [] };
    const types = await deps.types.list(
      scope(req),
      {
        ...(isPublic !== undefined ? { isPublic, withShared: scope(req) !== undefined } : {}),
        ...(name !== undefined ? { name } : {}),
        ...(description !== undefined ? { description } : {}),
        ...(id !== undefined ? { id } : {}),
        ...(specs !== undefined ? { extraSpecs: specs } : {}),
      },
      q.page,
    );
    // Cinder's type list has no next links
    return { volume_types: types.map((t) => view(req, t)) };
  });
  app.get(`${base}/default`, tags, async (req) => ({
    volume_type: view(req, await deps.types.get(DEFAULT_VOLUME_TYPE, undefined)),
  }));
  app.get(`${base}/:type_id`, tags, async (req) => ({ volume_type: view(req, await found(req)) }));

  app.post(base, tags, async (req) => {
    requireAdmin(deps.context(req));
    const body = objectBody(req.body, 'volume_type');
    const name = typeName(body.name);
    const isPublic =
      body['os-volume-type-access:is_public'] === undefined
        ? true
        : booleanParam('os-volume-type-access:is_public', body['os-volume-type-access:is_public']);
    const type = await deps.types.create({
      name,
      description: optionalText('description', body.description) ?? null,
      isPublic,
      extraSpecs: body.extra_specs === undefined ? {} : metadataBody('extra_specs', body.extra_specs),
    });
    return { volume_type: view(req, type, true) };
  });
  app.put(`${base}/:type_id`, tags, async (req) => {
    const type = await admin(req);
    const body = objectBody(req.body, 'volume_type');
    const changes = {
      ...(body.name !== undefined && body.name !== null ? { name: typeName(body.name) } : {}),
      ...(body.description !== undefined
        ? { description: optionalText('description', body.description) ?? null }
        : {}),
      ...(body.is_public !== undefined ? { isPublic: booleanParam('is_public', body.is_public) } : {}),
    };
    if (Object.keys(changes).length === 0) {
      throw new InvalidInputError(
        'Specify volume type name, description, is_public or a combination thereof.',
      );
    }
    if (type.name === DEFAULT_VOLUME_TYPE && changes.name !== undefined && changes.name !== type.name) {
      throw new InvalidInputError('The default volume type cannot be renamed.');
    }
    const updated = await deps.types.update(type.id, changes);
    const { 'os-volume-type-access:is_public': _, ...shown } = view(req, updated, true);
    // the access extension adds its attribute to create, not to update
    return { volume_type: shown };
  });
  app.delete(`${base}/:type_id`, tags, async (req, reply) => {
    const type = await admin(req);
    // in use, or the default type: Cinder's 400
    await deps.types.delete(type.id);
    reply.code(202);
    return '';
  });

  const specs = `${base}/:type_id/extra_specs`;
  const key = (req: FastifyRequest) => (req.params as { key: string }).key;
  app.get(specs, tags, async (req) => ({ extra_specs: (await admin(req)).extraSpecs }));
  app.post(specs, tags, async (req) => {
    const type = await admin(req);
    const set = metadataBody('extra_specs', objectBody(req.body, 'extra_specs'));
    await deps.types.updateSpecs(type.id, { set });
    return { extra_specs: set };
  });
  app.get(`${specs}/:key`, tags, async (req) => {
    const value = (await admin(req)).extraSpecs[key(req)];
    if (value === undefined)
      throw new NotFoundError(`Volume Type ${typeId(req)} has no extra specs with key ${key(req)}.`);
    return { [key(req)]: value };
  });
  app.put(`${specs}/:key`, tags, async (req) => {
    const type = await admin(req);
    const set = metadataBody('extra spec', req.body);
    const keys = Object.keys(set);
    if (keys.length !== 1) throw new InvalidInputError('Request body contains too many items.');
    if (keys[0] !== key(req)) throw new InvalidInputError('Request body and URI mismatch');
    await deps.types.updateSpecs(type.id, { set });
    return set;
  });
  app.delete(`${specs}/:key`, tags, async (req, reply) => {
    const type = await admin(req);
    if (type.extraSpecs[key(req)] === undefined) {
      throw new NotFoundError(`Volume Type ${type.id} has no extra specs with key ${key(req)}.`);
    }
    await deps.types.updateSpecs(type.id, { remove: key(req) });
    reply.code(202);
    return '';
  });

  app.get(`${base}/:type_id/os-volume-type-access`, tags, async (req) => {
    const type = await admin(req);
    if (type.isPublic) throw new NotFoundError('Access list not available for public volume types.');
    return {
      volume_type_access: (await deps.types.projects(type.id)).map((project_id) => ({
        volume_type_id: type.id,
        project_id,
      })),
    };
  });
  app.post(`${base}/:type_id/action`, tags, async (req, reply) => {
    const type = await admin(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const action = Object.keys(body)[0];
    if (action !== 'addProjectAccess' && action !== 'removeProjectAccess') {
      throw new InvalidInputError(`There is no such action: ${String(action)}`);
    }
    const project = objectBody(body, action).project;
    if (typeof project !== 'string' || project.length === 0) throw new InvalidInputError('Missing project.');
    if (type.isPublic)
      throw new InvalidInputError(
        'Invalid volume type: Type access modification is not applicable to public volume type.',
      );
    const add = action === 'addProjectAccess';
    if (!(await deps.types.setAccess(type.id, project, add))) {
      if (add)
        throw new ConflictError(`Volume type access for ${type.id} / ${project} combination already exists.`);
      throw new NotFoundError(`Volume type access not found for ${type.id} / ${project} combination.`);
    }
    reply.code(202);
    return '';
  });
}

function typeName(value: unknown): string {
  const name = optionalText('name', value);
  if (!name || name.trim().length === 0) throw new InvalidInputError('Volume type name can not be empty.');
  return name.trim();
}

/** Cinder's type list: sorted and paginated; members filter on `is_public` and `extra_specs`. */
const TYPE_LIST: ListSpec<TypeSortKey> = {
  sortKeys: ['created_at', 'updated_at', 'id', 'name', 'description', 'is_public'],
  filters: ['is_public', 'extra_specs'],
  adminFilters: ['name', 'description', 'id'],
  // SUPPORT_VOLUME_TYPE_FILTER
  strictFrom: '3.52',
};

/** Cinder's `is_public`: a boolean, or `none` for public and private alike. */
function publicFilter(given: string): boolean | undefined {
  if (given.toLowerCase() === 'none') return undefined;
  try {
    return booleanParam('is_public', given);
  } catch {
    throw new InvalidInputError(`Invalid is_public filter [${given}]`);
  }
}
