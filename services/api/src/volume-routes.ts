import type { RequestContext } from '@basalt/context';
import type { SchedulerRpcApi } from '@basalt/contracts';
import type {
  AttachmentRepository,
  MessageRepository,
  QuotaLimits,
  QuotaRepository,
  ServiceDirectory,
  SnapshotRepository,
  TransferRepository,
  VolumeFilter,
  VolumeRecord,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { SORT_COLUMNS, type SortKey } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { ImageApi } from '@basalt/images';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerActionRoute } from './action-routes';
import { dictFilter, type ListSpec, nextLinks, parseList } from './list-query';
import { registerMessageRoutes } from './message-routes';
import { registerMetadataRoutes } from './metadata-routes';
import { registerOperatorRoutes } from './operator-routes';
import { registerQuotaRoutes } from './quota-routes';
import { registerServiceRoutes } from './service-routes';
import type { SnapshotApi } from './snapshot-api';
import { registerSnapshotRoutes } from './snapshot-routes';
import { registerTransferRoutes } from './transfer-routes';
import { registerTypeRoutes } from './type-routes';
import { booleanParam, isUuid, metadataBody, objectBody, optionalText, positiveInt } from './validate';
import { atLeast } from './versions';
import { uploadView, type ViewContext, volumeDetail, volumeSummary } from './views';
import { requireProject, type UploadImageRequest, type VolumeApi } from './volume-api';

export interface VolumeRouteDeps {
  readonly api: VolumeApi;
  readonly snapshotApi: SnapshotApi;
  readonly volumes: VolumeRepository;
  readonly snapshots: SnapshotRepository;
  readonly attachments: AttachmentRepository;
  readonly quotas: QuotaRepository;
  readonly messages: MessageRepository;
  readonly types: VolumeTypeRepository;
  readonly transfers: TransferRepository;
  readonly scheduler: SchedulerRpcApi;
  readonly services: ServiceDirectory;
  readonly quotaDefaults: QuotaLimits;
  readonly maxLimit: number;
  readonly baseUrl: () => string;
  readonly context: (req: FastifyRequest) => RequestContext;
  /** The image API (`[glance] api_servers`) as the caller reaches it: with the caller's own token. */
  readonly imagesFor: (token: string) => ImageApi;
}

/** What every resource's routes share: who asks, at which version, and how links are made. */
export interface RouteContext {
  readonly context: (req: FastifyRequest) => RequestContext;
  readonly project: (req: FastifyRequest) => string;
  readonly view: (req: FastifyRequest) => ViewContext;
  /** Cinder's `self` and `bookmark` links to one resource of a collection. */
  readonly links: (req: FastifyRequest, collection: string, id: string) => unknown[];
  /** Cinder's `<key>_links` of a list page whose items are `ids` (nothing when there is no next page). */
  readonly listLinks: (
    req: FastifyRequest,
    key: string,
    collection: string,
    ids: readonly string[],
    limit: number,
  ) => Record<string, unknown>;
  readonly maxLimit: number;
  readonly baseUrl: () => string;
}

type Params = { project_id: string; volume_id: string; target_project_id: string };

const volumeBodySchema = {
  type: 'object',
  required: ['volume'],
  properties: {
    volume: {
      type: 'object',
      properties: {
        size: {
          description:
            "Size in GiB: an integer of at least 1 (or a string of digits); the source's size when a snapshot_id or source_volid is given.",
        },
        snapshot_id: { type: ['string', 'null'] },
        source_volid: { type: ['string', 'null'] },
        imageRef: { type: ['string', 'null'] },
        name: { type: ['string', 'null'], maxLength: 255 },
        description: { type: ['string', 'null'], maxLength: 255 },
        availability_zone: { type: ['string', 'null'] },
        metadata: { type: 'object' },
      },
    },
  },
} as const;

/**
 * Cinder v3's volume, action and quota-set resources, under `/v3/{project_id}` and (as Cinder 3.67
 * allows) under `/v3` with the project taken from the token.
 */
export function registerVolumeRoutes(app: FastifyInstance, deps: VolumeRouteDeps): void {
  const project = (req: FastifyRequest) => requireProject(deps.context(req));
  const shared: RouteContext = {
    context: deps.context,
    project,
    view: (req) => ({ isAdmin: deps.context(req).isAdmin, version: req.apiVersion }),
    links: (req, collection, id) => [
      { rel: 'self', href: `${deps.baseUrl()}/v3/${project(req)}/${collection}/${id}` },
      { rel: 'bookmark', href: `${deps.baseUrl()}/${project(req)}/${collection}/${id}` },
    ],
    listLinks: (req, key, collection, ids, limit) => {
      const next = nextLinks(req, deps.baseUrl(), deps.context(req).projectId, collection, ids, limit);
      return next.length ? { [`${key}_links`]: next } : {};
    },
    maxLimit: deps.maxLimit,
    baseUrl: deps.baseUrl,
  };
  for (const prefix of ['/v3/:project_id', '/v3']) {
    registerUnder(app, deps, shared, prefix);
    registerQuotaRoutes(app, deps, prefix);
    registerMessageRoutes(app, { ...shared, messages: deps.messages }, prefix);
    registerOperatorRoutes(app, { ...shared, ...deps }, prefix);
    registerTypeRoutes(app, { ...shared, types: deps.types }, prefix);
    registerTransferRoutes(
      app,
      { ...shared, api: deps.api, transfers: deps.transfers, quotaDefaults: deps.quotaDefaults },
      prefix,
    );
    registerServiceRoutes(
      app,
      { ...shared, services: deps.services, scheduler: deps.scheduler, volumes: deps.volumes },
      prefix,
    );
    registerSnapshotRoutes(app, { ...shared, api: deps.snapshotApi, snapshots: deps.snapshots }, prefix);
  }
}

function registerUnder(
  app: FastifyInstance,
  deps: VolumeRouteDeps,
  shared: RouteContext,
  prefix: string,
): void {
  const links = (req: FastifyRequest) => (id: string) => shared.links(req, 'volumes', id);
  const volumeId = (req: FastifyRequest) => {
    const id = (req.params as Params).volume_id;
    if (!isUuid(id)) throw new NotFoundError(`Volume ${id} could not be found.`);
    return id;
  };
  /** `extended`: as show and list answer, with the admin-only attributes. */
  // a list shows each type's name once read: one lookup per type per request
  const typeNames = new WeakMap<FastifyRequest, Map<string, Promise<string | null>>>();
  const typeName = (req: FastifyRequest, id: string | null) => {
    if (!id) return null;
    const names = typeNames.get(req) ?? new Map<string, Promise<string | null>>();
    typeNames.set(req, names);
    if (!names.has(id))
      names.set(
        id,
        deps.types.find(id, undefined).then((t) => t?.name ?? null),
      );
    return names.get(id) as Promise<string | null>;
  };
  /** Cinder's service_uuid: the uuid of the volume service on the volume's host. */
  const serviceUuid = async (volume: VolumeRecord) =>
    volume.host === null
      ? null
      : ((await deps.services.list()).find((s) => s.binary === 'basalt-volume' && s.host === volume.host)
          ?.uuid ?? null);
  const images = (req: FastifyRequest) => {
    const token = req.headers['x-auth-token'];
    return deps.imagesFor((Array.isArray(token) ? token[0] : token) ?? '');
  };
  const detail = async (req: FastifyRequest, volume: VolumeRecord, extended = false) =>
    volumeDetail(
      volume,
      await typeName(req, volume.volumeType),
      await deps.attachments.live(volume.id),
      links(req),
      shared.view(req),
      extended
        ? { host: volume.host && volume.pool ? `${volume.host}@${volume.pool}` : volume.host }
        : undefined,
      await serviceUuid(volume),
    );

  app.post(
    `${prefix}/volumes`,
    { schema: { body: volumeBodySchema, tags: ['volumes'] } },
    async (req, reply) => {
      const body = objectBody(req.body, 'volume');
      const zone = optionalText('availability_zone', body.availability_zone);
      const volumeType = optionalText('volume_type', body.volume_type) ?? null;
      const imageRef = body.imageRef ?? body.image_id ?? undefined;
      const snapshotId = sourceId(body.snapshot_id, 'Snapshot');
      const sourceVolid = sourceId(body.source_volid, 'Volume');
      const hasSource = snapshotId !== undefined || sourceVolid !== undefined;
      const volume = await deps.api.create(deps.context(req), {
        size: hasSource && body.size === undefined ? null : positiveInt('size', body.size ?? null),
        ...(snapshotId === undefined ? {} : { snapshotId }),
        ...(sourceVolid === undefined ? {} : { sourceVolid }),
        ...(imageRef === undefined || imageRef === null
          ? {}
          : { image: { ref: imageRef, api: images(req) } }),
        name: optionalText('name', body.name ?? body.display_name) ?? null,
        description: optionalText('description', body.description ?? body.display_description) ?? null,
        availabilityZone: zone ?? null,
        metadata: body.metadata === undefined ? {} : metadataBody('metadata', body.metadata),
        volumeType,
      });
      reply.code(202);
      // the volume exists: the answer must not become a 503 (a client would retry it into a
      // twin) if the database has gone away since, so a new volume's attachments (none) are not
      // read and its type's name, if it cannot be read, is what the request gave; a new volume has
      // no host yet, so no service uuid
      const type = await Promise.resolve(typeName(req, volume.volumeType)).catch(() => volumeType);
      return { volume: volumeDetail(volume, type, [], links(req), shared.view(req), undefined, null) };
    },
  );

  const list = (detailed: boolean) => async (req: FastifyRequest) => {
    const ctx = deps.context(req);
    const q = parseList(req.query as Record<string, unknown>, VOLUME_LIST, deps.maxLimit, shared.view(req));
    // as in Cinder, all_tenants widens an admin's view and is ignored for everyone else
    const acrossProjects = q.allTenants && ctx.isAdmin;
    const volumes = await deps.volumes.list(
      {
        // an admin across projects may narrow the list to one (Cinder's project_id filter)
        ...(acrossProjects
          ? q.filters.project_id
            ? { projectId: q.filters.project_id }
            : {}
          : { projectId: requireProject(ctx) }),
        ...volumeFilter(q.filters, q.matchesNothing),
      },
      q.page,
    );
    const items = detailed
      ? await Promise.all(volumes.map((v) => detail(req, v, true)))
      : volumes.map((v) => volumeSummary(v, links(req)));
    const collection = detailed ? 'volumes/detail' : 'volumes';
    const ids = volumes.map((v) => v.id);
    return { volumes: items, ...shared.listLinks(req, 'volumes', collection, ids, q.page.limit) };
  };
  app.get(`${prefix}/volumes`, { schema: { tags: ['volumes'] } }, list(false));
  app.get(`${prefix}/volumes/detail`, { schema: { tags: ['volumes'] } }, list(true));

  app.get(`${prefix}/volumes/:volume_id`, { schema: { tags: ['volumes'] } }, async (req) => ({
    volume: await detail(req, await deps.api.get(deps.context(req), volumeId(req)), true),
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
    const metadata = body.metadata === undefined ? undefined : metadataBody('metadata', body.metadata);
    if (name === undefined && description === undefined && metadata === undefined) {
      throw new InvalidInputError('Nothing to update: give name, description and/or metadata.');
    }
    let volume = await deps.volumes.rename(id, {
      ...(name !== undefined ? { displayName: name } : {}),
      ...(description !== undefined ? { displayDescription: description } : {}),
    });
    if (metadata) volume = await deps.volumes.updateMetadata(id, { set: metadata, replace: true });
    return { volume: await detail(req, volume) };
  });

  app.delete(`${prefix}/volumes/:volume_id`, { schema: { tags: ['volumes'] } }, async (req, reply) => {
    const { cascade } = req.query as { cascade?: string };
    await deps.api.delete(deps.context(req), volumeId(req), {
      cascade: cascade !== undefined && booleanParam('cascade', cascade),
    });
    reply.code(202);
    return '';
  });

  const target = (req: FastifyRequest) => ({ ctx: deps.context(req), id: volumeId(req) });
  type Target = ReturnType<typeof target>;
  const detach = async ({ ctx, id }: Target, args: Record<string, unknown>, force: boolean) => {
    const attachmentId = args.attachment_id ?? undefined;
    if (attachmentId !== undefined && (typeof attachmentId !== 'string' || !isUuid(attachmentId))) {
      throw new InvalidInputError(`Invalid attachment_id ${JSON.stringify(attachmentId)}: not a UUID.`);
    }
    await deps.api.detach(ctx, id, attachmentId, force);
    return undefined;
  };
  registerActionRoute(app, `${prefix}/volumes/:volume_id/action`, { schema: { tags: ['volumes'] } }, target, {
    'os-extend': async ({ target: { ctx, id }, args, req }) => {
      await deps.api.extend(
        ctx,
        id,
        positiveInt('new_size', args().new_size),
        atLeast(req.apiVersion, '3.42'),
      );
      return undefined;
    },
    'os-reset_status': async ({ target: { ctx, id }, args }) => {
      const given = args();
      if (typeof given.status !== 'string') throw new InvalidInputError('os-reset_status needs a status.');
      const attachStatus = typeof given.attach_status === 'string' ? given.attach_status : undefined;
      await deps.api.resetStatus(ctx, id, given.status, attachStatus);
      return undefined;
    },
    'os-set_bootable': async ({ target: { ctx, id }, args }) => {
      const given = args();
      await deps.api.get(ctx, id);
      await deps.volumes.setFlags(id, { bootable: booleanParam('bootable', given.bootable) });
      // Cinder answers this one action with 200
      return 200;
    },
    'os-update_readonly_flag': async ({ target: { ctx, id }, args }) => {
      const given = args();
      await deps.api.get(ctx, id);
      await deps.volumes.setFlags(id, { readOnly: booleanParam('readonly', given.readonly) });
      return undefined;
    },
    'os-retype': async ({ target: { ctx, id }, args }) => {
      const given = args();
      if (typeof given.new_type !== 'string') throw new InvalidInputError('os-retype needs new_type.');
      const policy = given.migration_policy ?? 'never';
      if (policy !== 'never' && policy !== 'on-demand') {
        throw new InvalidInputError(
          `Invalid migration_policy '${String(policy)}'; must be never or on-demand.`,
        );
      }
      await deps.api.retype(ctx, id, given.new_type, policy);
      return undefined;
    },
    'os-force_delete': async ({ target: { ctx, id } }) => {
      await deps.api.forceDelete(ctx, id);
      return undefined;
    },
    'os-attach': async ({ target: { ctx, id }, args }) => {
      await deps.api.attach(ctx, id, attachBody(args()));
      return undefined;
    },
    'os-detach': ({ target, args }) => detach(target, args(), false),
    'os-force_detach': ({ target, args }) => detach(target, args(), true),
    'os-reserve': async ({ target: { ctx, id } }) => {
      await deps.api.reserve(ctx, id, true);
      return undefined;
    },
    'os-unreserve': async ({ target: { ctx, id } }) => {
      await deps.api.reserve(ctx, id, false);
      return undefined;
    },
    'os-volume_upload_image': async ({ target: { ctx, id }, args, req }) => {
      const upload = await deps.api.uploadToImage(ctx, id, uploadBody(args(), req.apiVersion), images(req));
      const type = upload.volume.volumeType
        ? await deps.types.find(upload.volume.volumeType, undefined)
        : undefined;
      return {
        status: 202,
        body: { 'os-volume_upload_image': uploadView(upload, type ?? null, req.apiVersion) },
      };
    },
    'os-set_image_metadata': async ({ target: { ctx, id }, args }) => {
      const given = args();
      await deps.api.get(ctx, id);
      const volume = await deps.volumes.updateImageMetadata(id, {
        set: metadataBody('metadata', given.metadata),
      });
      return { status: 200, body: { metadata: volume.imageMetadata ?? {} } };
    },
    'os-unset_image_metadata': async ({ target: { ctx, id }, args }) => {
      const given = args();
      if (typeof given.key !== 'string') throw new InvalidInputError('os-unset_image_metadata needs a key.');
      const volume = await deps.api.get(ctx, id);
      if (!(given.key in (volume.imageMetadata ?? {}))) {
        throw new NotFoundError(`Glance metadata for volume ${id} with key ${given.key} could not be found.`);
      }
      await deps.volumes.updateImageMetadata(id, { remove: given.key });
      return 200;
    },
    'os-show_image_metadata': async ({ target: { ctx, id } }) => {
      const volume = await deps.api.get(ctx, id);
      return { status: 200, body: { metadata: volume.imageMetadata ?? {} } };
    },
  });

  registerMetadataRoutes(
    app,
    {
      path: 'volumes/:volume_id',
      tag: 'volumes',
      read: (req) => deps.api.get(deps.context(req), volumeId(req)),
      update: async (id, changes) => (await deps.volumes.updateMetadata(id, changes)).metadata,
    },
    prefix,
  );
}

/** os-attach's arguments, as Cinder checks them: an instance or a host, a mount point, a mode. */
function attachBody(args: Record<string, unknown>) {
  const text = (field: string) => {
    const value = args[field];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
      throw new InvalidInputError(`Invalid ${field}: a string of 1 to 255 characters.`);
    }
    return value;
  };
  const instanceUuid = text('instance_uuid');
  const hostName = text('host_name');
  if (instanceUuid !== null && !isUuid(instanceUuid)) {
    throw new InvalidInputError(`Invalid instance_uuid ${instanceUuid}: not a UUID.`);
  }
  if (instanceUuid === null && hostName === null) {
    throw new InvalidInputError(
      'Invalid request to attach volume to an invalid target: give instance_uuid or host_name.',
    );
  }
  const mountpoint = text('mountpoint');
  if (mountpoint === null) throw new InvalidInputError('os-attach needs a mountpoint.');
  const mode = args.mode ?? 'rw';
  if (mode !== 'rw' && mode !== 'ro') {
    throw new InvalidInputError(`Invalid attaching mode ${JSON.stringify(mode)}: must be rw or ro.`);
  }
  return { instanceUuid, hostName, mountpoint, mode } as const;
}

/** os-volume_upload_image's arguments as Cinder reads them (visibility and protected from 3.1). */
function uploadBody(args: Record<string, unknown>, version: string): UploadImageRequest {
  const name = args.image_name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) {
    throw new InvalidInputError('os-volume_upload_image needs an image_name of 1 to 255 characters.');
  }
  const text = (field: string, fallback: string) => {
    const value = args[field] ?? fallback;
    if (typeof value !== 'string') throw new InvalidInputError(`Invalid ${field}: a string is required.`);
    return value;
  };
  // Cinder's enable_force_upload is off: force is checked, then ignored (the volume must be available)
  if (args.force !== undefined) booleanParam('force', args.force);
  const since31 = atLeast(version, '3.1');
  return {
    name,
    diskFormat: text('disk_format', 'raw'),
    containerFormat: text('container_format', 'bare'),
    visibility: since31 ? text('visibility', 'private') : 'private',
    protected: since31 && args.protected !== undefined ? booleanParam('protected', args.protected) : false,
  };
}

/** A source's id as the body gives it; one that cannot be an id names nothing that exists (404). */
function sourceId(value: unknown, kind: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !isUuid(value))
    throw new NotFoundError(`${kind} ${String(value)} could not be found.`);
  return value;
}

/** Cinder's volume list: its sort keys and the filters of resource_filters.json's `volume`. */
const VOLUME_LIST: ListSpec<SortKey> = {
  sortKeys: Object.keys(SORT_COLUMNS) as SortKey[],
  filters: [
    'name',
    'status',
    'metadata',
    'bootable',
    'availability_zone',
    'size',
    'migration_status',
    'group_id',
  ],
  adminFilters: ['project_id', 'host'],
};

/** The list's filters as the repository takes them. */
function volumeFilter(filters: Readonly<Record<string, string>>, matchesNothing: boolean): VolumeFilter {
  const { name, status, metadata, bootable, availability_zone, size, host } = filters;
  return {
    // no volume is in a group or migrating: naming either matches nothing
    matchesNothing: matchesNothing || 'group_id' in filters || 'migration_status' in filters,
    ...(name !== undefined ? { name } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(availability_zone !== undefined ? { availabilityZone: availability_zone } : {}),
    ...(bootable !== undefined ? { bootable: booleanParam('bootable', bootable) } : {}),
    ...(size !== undefined ? { size: positiveInt('size', size) } : {}),
    ...(metadata !== undefined ? { metadata: dictFilter('metadata', metadata) } : {}),
  };
}
