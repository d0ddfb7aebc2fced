import type { RequestContext } from '@basalt/context';
import type { InstanceActionRepository } from '@basalt/db';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ComputeApi, ServerEvent } from './compute-api';
import { instanceAction, instanceActionEvent } from './compute-views';
import { isUuid } from './validate';

export interface InstanceActionRouteDeps {
  readonly api: ComputeApi;
  readonly actions: InstanceActionRepository;
  readonly context: (req: FastifyRequest) => RequestContext;
}

type Params = { server_id: string; request_id: string };

/** os-server-external-events' names (those up to the volume-extended of 2.51). */
const EVENT_NAMES = [
  'network-changed',
  'network-vif-plugged',
  'network-vif-unplugged',
  'network-vif-deleted',
  'volume-extended',
];
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
    const results = await deps.api.externalEvents(deps.context(req), serverEvents(req.body));
    const accepted = results.filter((r) => r.code === 200).length;
    if (accepted === 0) throw new NotFoundError('No instances found for any event');
    reply.code(accepted === results.length ? 200 : 207);
    return { events: results };
  });

  const actions = `${prefix}/servers/:server_id/os-instance-actions`;
  const server = async (req: FastifyRequest) => {
    const id = (req.params as Params).server_id;
    if (!isUuid(id)) throw new NotFoundError(`Instance ${id} could not be found.`);
    return (await deps.api.get(deps.context(req), id)).id;
  };
  app.get(actions, async (req) => ({
    instanceActions: (await deps.actions.list(await server(req))).map(instanceAction),
  }));
  app.get(`${actions}/:request_id`, async (req) => {
    const id = await server(req);
    const requestId = (req.params as Params).request_id;
    const found = await deps.actions.find(id, requestId);
    if (!found) throw new NotFoundError(`Action ${requestId} not found`);
    // the events (they may hold a traceback) are an admin's to see before 2.51
    return {
      instanceAction: {
        ...instanceAction(found.action),
        ...(deps.context(req).isAdmin ? { events: found.events.map(instanceActionEvent) } : {}),
      },
    };
  });
}

/** The events of the body, checked as Nova's schema checks them. */
function serverEvents(body: unknown): ServerEvent[] {
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
    if (typeof event.name !== 'string' || !EVENT_NAMES.includes(event.name)) {
      throw new InvalidInputError(
        `Invalid input for field/attribute name. Value: ${JSON.stringify(event.name)}.`,
      );
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
