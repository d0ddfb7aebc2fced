import { SNAPSHOT_SORT_COLUMNS, type SnapshotRepository, type SnapshotSortKey } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerActionRoute } from './action-routes';
import { dictFilter, type ListSpec, parseList } from './list-query';
import { registerMetadataRoutes } from './metadata-routes';
import type { SnapshotApi } from './snapshot-api';
import { booleanParam, isUuid, metadataBody, objectBody, optionalText } from './validate';
import { snapshotView } from './views';
import type { RouteContext } from './volume-routes';

const tags = { schema: { tags: ['snapshots'] } };

/** Cinder v3's snapshots: create, list (plain and detailed), show, update, delete, actions, metadata. */
export function registerSnapshotRoutes(
  app: FastifyInstance,
  deps: RouteContext & { readonly api: SnapshotApi; readonly snapshots: SnapshotRepository },
  prefix: string,
): void {
  const snapshotId = (req: FastifyRequest) => {
    const id = (req.params as { snapshot_id: string }).snapshot_id;
    if (!isUuid(id)) throw new NotFoundError(`Snapshot ${id} could not be found.`);
    return id;
  };
  const visible = (req: FastifyRequest) => deps.api.get(deps.context(req), snapshotId(req));

  app.post(`${prefix}/snapshots`, tags, async (req, reply) => {
    const body = objectBody(req.body, 'snapshot');
    if (!('volume_id' in body)) throw new InvalidInputError("'volume_id' must be specified.");
    const volumeId = body.volume_id;
    // as Cinder looks it up: an id that is none (null included) names no volume
    if (typeof volumeId !== 'string' || !isUuid(volumeId))
      throw new NotFoundError(`Volume ${String(volumeId)} could not be found.`);
    const snapshot = await deps.api.create(deps.context(req), {
      volumeId,
      name: optionalText('name', body.name ?? body.display_name) ?? null,
      description: optionalText('description', body.description ?? body.display_description) ?? null,
      metadata:
        body.metadata === undefined || body.metadata === null ? {} : metadataBody('metadata', body.metadata),
      // python-cinderclient sends null when --force is not given
      force: body.force === undefined || body.force === null ? false : booleanParam('force', body.force),
    });
    reply.code(202);
    return { snapshot: snapshotView(snapshot, deps.view(req)) };
  });

  const list = (detailed: boolean) => async (req: FastifyRequest) => {
    const ctx = deps.context(req);
    const q = parseList(req.query as Record<string, unknown>, SNAPSHOT_LIST, deps.maxLimit, deps.view(req));
    // as in Cinder, all_tenants widens an admin's view and is ignored for everyone else
    const acrossProjects = q.allTenants && ctx.isAdmin;
    const { name, status, metadata, volume_id: volumeId, project_id: projectId } = q.filters;
    const snapshots = await deps.snapshots.list(
      {
        ...(acrossProjects ? (projectId ? { projectId } : {}) : { projectId: deps.project(req) }),
        matchesNothing: q.matchesNothing,
        ...(name !== undefined ? { name } : {}),
        ...(status !== undefined ? { status } : {}),
        ...(volumeId !== undefined ? { volumeId } : {}),
        ...(metadata !== undefined ? { metadata: dictFilter('metadata', metadata) } : {}),
      },
      q.page,
    );
    const items = snapshots.map((s) => snapshotView(s, detailed ? deps.view(req) : undefined, detailed));
    const collection = detailed ? 'snapshots/detail' : 'snapshots';
    const ids = snapshots.map((s) => s.id);
    return { snapshots: items, ...deps.listLinks(req, 'snapshots', collection, ids, q.page.limit) };
  };
  app.get(`${prefix}/snapshots`, tags, list(false));
  app.get(`${prefix}/snapshots/detail`, tags, list(true));

  app.get(`${prefix}/snapshots/:snapshot_id`, tags, async (req) => ({
    snapshot: snapshotView(await visible(req), deps.view(req), true),
  }));

  app.put(`${prefix}/snapshots/:snapshot_id`, tags, async (req) => {
    const { id } = await visible(req);
    const body = objectBody(req.body, 'snapshot');
    // null clears a field, so "given as null" and "not given" must stay apart
    const name = optionalText('name', 'name' in body ? body.name : body.display_name);
    const description = optionalText(
      'description',
      'description' in body ? body.description : body.display_description,
    );
    if (name === undefined && description === undefined) {
      throw new InvalidInputError('Nothing to update: give name and/or description.');
    }
    const snapshot = await deps.snapshots.update(id, {
      ...(name !== undefined ? { displayName: name } : {}),
      ...(description !== undefined ? { displayDescription: description } : {}),
    });
    return { snapshot: snapshotView(snapshot, deps.view(req)) };
  });

  app.delete(`${prefix}/snapshots/:snapshot_id`, tags, async (req, reply) => {
    await deps.api.delete(deps.context(req), snapshotId(req));
    reply.code(202);
    return '';
  });

  registerActionRoute(app, `${prefix}/snapshots/:snapshot_id/action`, tags, snapshotId, {
    'os-reset_status': async ({ target: id, req, args }) => {
      const { status } = args();
      if (typeof status !== 'string') throw new InvalidInputError('os-reset_status needs a status.');
      await deps.api.resetStatus(deps.context(req), id, status);
      return undefined;
    },
    'os-update_snapshot_status': async ({ target: id, req, args }) => {
      const { status, progress } = args();
      if (typeof status !== 'string')
        throw new InvalidInputError('os-update_snapshot_status needs a status.');
      const given = optionalText('progress', progress);
      await deps.api.updateStatus(deps.context(req), id, status, given ?? undefined);
      return undefined;
    },
    'os-force_delete': async ({ target: id, req }) => {
      await deps.api.delete(deps.context(req), id, true);
      return undefined;
    },
  });

  registerMetadataRoutes(
    app,
    {
      path: 'snapshots/:snapshot_id',
      tag: 'snapshots',
      read: visible,
      update: async (id, changes) =>
        (
          await deps.snapshots.update(id, {
            ...(changes.set ? { metadata: changes.set } : {}),
            ...(changes.replace ? { replace: true } : {}),
            ...(changes.remove ? { remove: changes.remove } : {}),
          })
        ).metadata,
    },
    prefix,
  );
}

/** Cinder's snapshot list: its sort keys and the filters of resource_filters.json's `snapshot`. */
const SNAPSHOT_LIST: ListSpec<SnapshotSortKey> = {
  sortKeys: Object.keys(SNAPSHOT_SORT_COLUMNS) as SnapshotSortKey[],
  filters: ['name', 'status', 'volume_id', 'metadata'],
  adminFilters: ['project_id'],
};
