import {
  MESSAGE_FILTERS,
  type MessageFilter,
  type MessageRecord,
  type MessageRepository,
  type MessageSortKey,
} from '@basalt/db';
import { NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type ListSpec, parseList } from './list-query';
import { isUuid } from './validate';
import type { RouteContext } from './volume-routes';

/** Cinder's user messages (3.3+): list, show and delete what failed on the caller's resources. */
export function registerMessageRoutes(
  app: FastifyInstance,
  deps: RouteContext & { readonly messages: MessageRepository },
  prefix: string,
): void {
  // as Cinder's project_only queries: an admin sees every project's messages
  const scope = (req: FastifyRequest) => {
    const ctx = deps.context(req);
    return ctx.isAdmin ? undefined : deps.project(req);
  };
  const view = (req: FastifyRequest, m: MessageRecord) => ({
    id: m.id,
    event_id: m.eventId,
    user_message: m.userMessage,
    message_level: m.messageLevel,
    created_at: m.createdAt.toISOString(),
    guaranteed_until: new Date(m.createdAt.getTime() + deps.messages.ttlSec * 1000).toISOString(),
    request_id: m.requestId,
    links: deps.links(req, 'messages', m.id),
    resource_type: m.resourceType,
    ...(m.resourceUuid ? { resource_uuid: m.resourceUuid } : {}),
  });
  const messageId = (req: FastifyRequest) => {
    const id = (req.params as { message_id: string }).message_id;
    if (!isUuid(id)) throw new NotFoundError(`Message ${id} could not be found.`);
    return id;
  };
  const tags = { schema: { tags: ['messages'] }, config: { minVersion: '3.3' } };

  app.get(`${prefix}/messages`, tags, async (req) => {
    const q = parseList(req.query as Record<string, unknown>, MESSAGE_LIST, deps.maxLimit, deps.view(req));
    const filter: MessageFilter = q.filters;
    const messages = q.matchesNothing ? [] : await deps.messages.list(scope(req), filter, q.page);
    const ids = messages.map((m) => m.id);
    return {
      messages: messages.map((m) => view(req, m)),
      ...deps.listLinks(req, 'messages', 'messages', ids, q.page.limit),
    };
  });
  app.get(`${prefix}/messages/:message_id`, tags, async (req) => {
    const id = messageId(req);
    const message = await deps.messages.find(id, scope(req));
    if (!message) throw new NotFoundError(`Message ${id} could not be found.`);
    return { message: view(req, message) };
  });
  app.delete(`${prefix}/messages/:message_id`, tags, async (req, reply) => {
    const id = messageId(req);
    if (!(await deps.messages.delete(id, scope(req)))) {
      throw new NotFoundError(`Message ${id} could not be found.`);
    }
    reply.code(204);
    return '';
  });
}

/** Cinder's message list: paginated, sorted and filtered from 3.5 (MESSAGES_PAGINATION). */
const MESSAGE_LIST: ListSpec<MessageSortKey> = {
  sortKeys: ['created_at', 'id', 'event_id', 'message_level', 'request_id', 'resource_type', 'resource_uuid'],
  filters: MESSAGE_FILTERS,
  paginatedFrom: '3.5',
};
