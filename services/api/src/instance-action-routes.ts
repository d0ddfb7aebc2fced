import type { RequestContext } from '@basalt/context';
import type { InstanceActionPage, InstanceActionRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ComputeApi, ServerEvent } from './compute-api';
import {
  additionalProperties,
  bodyError,
  checkChangesWindow,
  checkDateTime,
  checkNonNegativeInteger,
  checkSingle,
  isoTime,
  pyList,
  pyRepr,
  pyValue,
  queryValues,
} from './compute-query';
import { collectionLinks, instanceAction, instanceActionEvent } from './compute-views';
import { isUuid } from './validate';
import { atLeast } from './versions';
import { requireProject } from './volume-api';

export interface InstanceActionRouteDeps {
  readonly api: ComputeApi;
  readonly actions: InstanceActionRepository;
  /** `[api] max_limit`: the most actions a page lists (2.58). */
  readonly maxLimit: number;
  readonly baseUrl: () => string;
  readonly context: (req: FastifyRequest) => RequestContext;
  /** Whether a policy rule lets the caller act on a project's resource (nova's context.can, fatal=False). */
  readonly can: (req: FastifyRequest, rule: string, projectId: string) => boolean;
}

type Params = { server_id: string; request_id: string };

/** os-server-external-events' names (2.51 adds volume-extended). */
const EVENT_NAMES = [
  'network-changed',
  'network-vif-plugged',
  'network-vif-unplugged',
  'network-vif-deleted',
];
const EVENT_NAMES_V251 = [...EVENT_NAMES, 'volume-extended'];
/** The query of an action list from 2.58 (nova's index_query_v258; it allows nothing else); 2.66 adds changes-before. */
const ACTION_LIST_QUERY = ['limit', 'marker', 'changes-since'];
const ACTION_LIST_QUERY_V266 = [...ACTION_LIST_QUERY, 'changes-before'];
const EVENTS_POLICY = 'os_compute_api:os-instance-actions:events';
const EVENT_STATUSES = ['failed', 'completed', 'in-progress'];

/**
 * Nova's os-server-external-events (how the volume service tells of a volume that grew under a
 * server) and os-instance-actions (what was asked of a server, with the compute host's events for
 * admins), under `prefix`.
 */
export function registerInstanceActionRoutes(
  app: FastifyInstance,
  deps: InstanceActionRouteDeps,
  prefix: string,
): void {
  app.post(`${prefix}/os-server-external-events`, async (req, reply) => {
    const names = atLeast(req.computeVersion, '2.51') ? EVENT_NAMES_V251 : EVENT_NAMES;
    const results = await deps.api.externalEvents(deps.context(req), serverEvents(req.body, names));
    const accepted = results.filter((r) => r.code === 200).length;
    if (accepted === 0) throw new NotFoundError('No instances found for any event');
    reply.code(accepted === results.length ? 200 : 207);
    return { events: results };
  });

  const actions = `${prefix}/servers/:server_id/os-instance-actions`;
  const server = async (req: FastifyRequest) => {
    const id = (req.params as Params).server_id;
    if (!isUuid(id)) throw new NotFoundError(`Instance ${id} could not be found.`);
    return deps.api.get(deps.context(req), id);
  };
  app.get(actions, async (req) => {
    const { id } = await server(req);
    const version = req.computeVersion;
    if (!atLeast(version, '2.58')) {
      return { instanceActions: (await deps.actions.list(id)).map((a) => instanceAction(version, a)) };
    }
    const query = req.query as Record<string, unknown>;
    const page = actionPage(
      query,
      deps.maxLimit,
      atLeast(version, '2.66') ? ACTION_LIST_QUERY_V266 : ACTION_LIST_QUERY,
    );
    const found = await deps.actions.list(id, page);
    const instanceActions = found.map((a) => instanceAction(version, a));
    const v = { baseUrl: deps.baseUrl(), projectId: requireProject(deps.context(req)) };
    const collection = `servers/${id}/os-instance-actions`;
    const markers = found.map((a) => a.requestId);
    const links = collectionLinks(v, req.url, collection, query, markers, page.limit);
    return links ? { instanceActions, links } : { instanceActions };
  });
  app.get(`${actions}/:request_id`, async (req) => {
    const instance = await server(req);
    const requestId = (req.params as Params).request_id;
    const found = await deps.actions.find(instance.id, requestId);
    if (!found) throw new NotFoundError(`Action ${requestId} not found`);
    // those the events policy lets see them (admins) see events with their tracebacks (and from
    // 2.62 hosts); from 2.51 everyone sees the events, without those
    const full = deps.can(req, EVENTS_POLICY, instance.projectId);
    const events = full || atLeast(req.computeVersion, '2.51');
    return {
      instanceAction: {
        ...instanceAction(req.computeVersion, found.action),
        ...(events
          ? {
              events: found.events.map((e) =>
                instanceActionEvent(req.computeVersion, e, found.action.projectId, full),
              ),
            }
          : {}),
      },
    };
  });
}

/** A 2.58 action list's query, checked as nova's index_query_v258 (v266) checks it. */
function actionPage(
  query: Record<string, unknown>,
  maxLimit: number,
  allowed: readonly string[],
): InstanceActionPage {
  // in the schema's order: each value of a parameter, then that it is one
  const checks: Record<string, (key: string, value: string) => void> = {
    limit: checkNonNegativeInteger,
    'changes-since': checkDateTime,
    'changes-before': checkDateTime,
  };
  for (const key of allowed) {
    const values = queryValues(query, key);
    for (const value of values) checks[key]?.(key, value);
    checkSingle(key, values);
  }
  const unexpected = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unexpected.length > 0) throw new InvalidInputError(additionalProperties(unexpected));
  const [limit] = queryValues(query, 'limit');
  const [marker] = queryValues(query, 'marker');
  const [since] = queryValues(query, 'changes-since');
  const [before] = queryValues(query, 'changes-before');
  const changesSince = since === undefined ? undefined : isoTime(since);
  const changesBefore = before === undefined ? undefined : isoTime(before);
  if (changesBefore) checkChangesWindow(changesSince, changesBefore);
  return {
    limit: Math.min(limit === undefined ? maxLimit : Number(limit), maxLimit),
    ...(marker !== undefined ? { marker } : {}),
    ...(changesSince ? { changesSince } : {}),
    ...(changesBefore ? { changesBefore } : {}),
  };
}

/** The events of the body, checked as Nova's schema checks them. */
function serverEvents(body: unknown, names: readonly string[]): ServerEvent[] {
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events) || events.length === 0) {
    throw new InvalidInputError(
      "Invalid input for field/attribute events: 'events' is a required non-empty list.",
    );
  }
  return events.map((e: unknown) => {
    const event = e as Record<string, unknown> | null;
    if (typeof event !== 'object' || event === null) {
      throw new InvalidInputError('Invalid input for field/attribute events: every event is an object.');
    }
    for (const key of Object.keys(event)) {
      if (!['name', 'server_uuid', 'tag', 'status'].includes(key)) {
        throw new InvalidInputError(
          `Invalid input for field/attribute events. Additional properties are not allowed ('${key}' was unexpected)`,
        );
      }
    }
    if (typeof event.name !== 'string') {
      throw bodyError('name', event.name, `${pyValue(event.name)} is not of type 'string'`);
    }
    if (!names.includes(event.name)) {
      throw bodyError('name', event.name, `${pyRepr(event.name)} is not one of ${pyList(names)}`);
    }
    if (typeof event.server_uuid !== 'string' || !isUuid(event.server_uuid)) {
      throw new InvalidInputError(
        `Invalid input for field/attribute server_uuid. Value: ${JSON.stringify(event.server_uuid)}.`,
      );
    }
    if (event.tag !== undefined && (typeof event.tag !== 'string' || event.tag.length > 255)) {
      throw new InvalidInputError(
        'Invalid input for field/attribute tag: a string of at most 255 characters.',
      );
    }
    if (event.status !== undefined && !EVENT_STATUSES.includes(String(event.status))) {
      throw new InvalidInputError(
        `Invalid input for field/attribute status. Value: ${JSON.stringify(event.status)}.`,
      );
    }
    return {
      name: event.name,
      server_uuid: event.server_uuid,
      ...(event.tag === undefined ? {} : { tag: event.tag as string }),
      ...(event.status === undefined ? {} : { status: event.status as string }),
    };
  });
}
