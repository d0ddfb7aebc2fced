import type { MessageRecord, MessageRepository } from '@basalt/db';
import { NotFoundError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUuid, listLimit } from './validate';
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
    const limit = listLimit(req.query as Record<string, unknown>, deps.maxLimit);
    const messages = await deps.messages.list(scope(req), limit);
    return { messages: messages.map((m) => view(req, m)) };
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
