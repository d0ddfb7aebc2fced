import { InvalidInputError } from '@basalt/errors';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { actionName, objectBody } from './validate';

/** What one action's handler is given: its target, the request, and its arguments when it reads them. */
export interface ActionCall<T> {
  readonly target: T;
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  /** The action's own object (`{"os-extend": {…}}`), checked to be one. */
  readonly args: () => Record<string, unknown>;
}

/** An action's handler; what it resolves to is the status, 202 unless it says otherwise. */
export type ActionHandler<T> = (call: ActionCall<T>) => Promise<number | undefined>;

/**
 * `POST …/action` as Cinder and Nova take it: the target first (a bad id is its 404, whatever the
 * body), then a body naming exactly one action, dispatched to its handler; an action the
 * resource does not have is a 400. Answers with an empty body.
 */
export function registerActionRoute<T>(
  app: FastifyInstance,
  path: string,
  options: RouteShorthandOptions,
  target: (req: FastifyRequest) => T,
  handlers: Readonly<Record<string, ActionHandler<T>>>,
): void {
  app.post(path, options, async (req, reply) => {
    const resolved = target(req);
    const action = actionName(req.body);
    const handler = Object.hasOwn(handlers, action) ? handlers[action] : undefined;
    if (!handler) throw new InvalidInputError(`There is no such action: ${action}`);
    const status = await handler({ target: resolved, req, reply, args: () => objectBody(req.body, action) });
    reply.code(status ?? 202);
    return '';
  });
}
