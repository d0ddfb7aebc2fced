import {
  type QuotaLimits,
  TRANSFER_FILTERS,
  type TransferFilter,
  type TransferRecord,
  type TransferRepository,
  type TransferSortKey,
} from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type ListSpec, parseList } from './list-query';
import { booleanParam, isUuid, objectBody, optionalText } from './validate';
import { atLeast } from './versions';
import { requireProject, type VolumeApi } from './volume-api';
import type { RouteContext } from './volume-routes';

/**
 * Cinder's volume transfers, under `os-volume-transfer` and (3.55+) `volume-transfers`: offer a
 * volume to another project, list, show, cancel, and accept with the key shown at creation.
 */
export function registerTransferRoutes(
  app: FastifyInstance,
  deps: RouteContext & {
    readonly api: VolumeApi;
    readonly transfers: TransferRepository;
    readonly quotaDefaults: QuotaLimits;
  },
  prefix: string,
): void {
  const tags = { schema: { tags: ['transfers'] } };
  const scope = (req: FastifyRequest) => (deps.context(req).isAdmin ? undefined : deps.project(req));
  const transferId = (req: FastifyRequest) => {
    const id = (req.params as { transfer_id: string }).transfer_id;
    if (!isUuid(id)) throw new NotFoundError(`Transfer ${id} could not be found.`);
    return id;
  };
  const collection = (req: FastifyRequest) =>
    req.url.includes('/volume-transfers') ? 'volume-transfers' : 'os-volume-transfer';
  const summary = (req: FastifyRequest, t: TransferRecord) => ({
    id: t.id,
    volume_id: t.volumeId,
    name: t.name,
    links: deps.links(req, collection(req), t.id),
  });
  const detail = (req: FastifyRequest, t: TransferRecord) => ({
    ...summary(req, t),
    created_at: t.createdAt.toISOString(),
    ...(atLeast(req.apiVersion, '3.55') ? { no_snapshots: t.noSnapshots } : {}),
    ...(atLeast(req.apiVersion, '3.57')
      ? {
          destination_project_id: t.destinationProjectId,
          source_project_id: t.sourceProjectId,
          accepted: t.accepted,
        }
      : {}),
  });

  const bases: ReadonlyArray<readonly [string, string]> = [
    [`${prefix}/os-volume-transfer`, '3.0'],
    [`${prefix}/volume-transfers`, '3.55'],
  ];
  for (const [base, minVersion] of bases) {
    const options = { ...tags, config: { minVersion } };
    app.post(base, options, async (req, reply) => {
      const body = objectBody(req.body, 'transfer');
      if (typeof body.volume_id !== 'string' || !isUuid(body.volume_id)) {
        throw new InvalidInputError('Invalid input: transfer needs a volume_id.');
      }
      const volume = await deps.api.get(deps.context(req), body.volume_id);
      const noSnapshots =
        atLeast(req.apiVersion, '3.55') && body.no_snapshots !== undefined
          ? booleanParam('no_snapshots', body.no_snapshots)
          : false;
      const { transfer, authKey } = await deps.transfers.create(
        volume,
        optionalText('name', body.name) ?? null,
        noSnapshots,
      );
      reply.code(202);
      return { transfer: { ...detail(req, transfer), auth_key: authKey } };
    });
    const list = async (req: FastifyRequest, detailed: boolean) => {
      const q = parseList(req.query as Record<string, unknown>, TRANSFER_LIST, deps.maxLimit, deps.view(req));
      const transfers = q.matchesNothing
        ? []
        : await deps.transfers.list(scope(req), transferFilter(q.filters), q.page);
      // Cinder's view builder links every transfer list, detailed or not, to os-volume-transfer
      const ids = transfers.map((t) => t.id);
      return {
        transfers: transfers.map((t) => (detailed ? detail(req, t) : summary(req, t))),
        ...deps.listLinks(req, 'transfers', 'os-volume-transfer', ids, q.page.limit),
      };
    };
    app.get(base, options, (req) => list(req, false));
    app.get(`${base}/detail`, options, (req) => list(req, true));
    app.get(`${base}/:transfer_id`, options, async (req) => {
      const id = transferId(req);
      const transfer = await deps.transfers.find(id, scope(req));
      if (!transfer) throw new NotFoundError(`Transfer ${id} could not be found.`);
      return { transfer: detail(req, transfer) };
    });
    app.delete(`${base}/:transfer_id`, options, async (req, reply) => {
      const id = transferId(req);
      const transfer = await deps.transfers.find(id, scope(req));
      if (!transfer) throw new NotFoundError(`Transfer ${id} could not be found.`);
      await deps.transfers.cancel(transfer);
      reply.code(202);
      return '';
    });
    app.post(`${base}/:transfer_id/accept`, options, async (req, reply) => {
      const ctx = deps.context(req);
      const args = objectBody(req.body, 'accept');
      if (typeof args.auth_key !== 'string') throw new InvalidInputError('accept needs an auth_key.');
      const projectId = requireProject(ctx);
      const { transfer } = await deps.transfers.accept(
        transferId(req),
        args.auth_key,
        { projectId, userId: ctx.userId ?? projectId },
        deps.quotaDefaults,
      );
      reply.code(202);
      return { transfer: summary(req, transfer) };
    });
  }
}

/**
 * Cinder's transfer list: paginated and sorted from 3.59 (before it, oldest first); filters on
 * the transfer's columns, `name` for `display_name`.
 */
const TRANSFER_LIST: ListSpec<TransferSortKey> = {
  sortKeys: ['created_at', 'updated_at', 'id', 'volume_id', 'display_name'],
  filters: ['name', ...TRANSFER_FILTERS],
  paginatedFrom: '3.59',
  legacySort: [
    { key: 'created_at', dir: 'asc' },
    { key: 'id', dir: 'asc' },
  ],
  lenient: true,
};

function transferFilter(filters: Readonly<Record<string, string>>): TransferFilter {
  const { name, accepted, no_snapshots, ...rest } = filters;
  return {
    ...rest,
    ...(name !== undefined ? { display_name: name } : {}),
    ...(accepted !== undefined ? { accepted: booleanParam('accepted', accepted) } : {}),
    ...(no_snapshots !== undefined ? { no_snapshots: booleanParam('no_snapshots', no_snapshots) } : {}),
  };
}
