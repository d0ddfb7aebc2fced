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

/** An action's answer: its status (202 unless it says otherwise), and a body for the actions that have one. */
export type ActionResult = number | undefined | { readonly status: number; readonly body: object };

/** An action's handler. */
export type ActionHandler<T> = (call: ActionCall<T>) => Promise<ActionResult>;

/**
 * `POST …/action` as Cinder and Nova take it: the target first (a bad id is its 404, whatever the
 * body), then a body naming exactly one action, dispatched to its handler; an action the
 * resource does not have is a 400. Answers with an empty body unless the handler gives one.
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
    const result = await handler({ target: resolved, req, reply, args: () => objectBody(req.body, action) });
    if (typeof result === 'object') {
      reply.code(result.status);
      return result.body;
    }
    reply.code(result ?? 202);
    return '';
  });
}
