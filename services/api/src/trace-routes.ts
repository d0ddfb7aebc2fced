import type { RequestContext } from '@basalt/context';
import { InvalidInputError, NotFoundError } from '@basalt/errors';
import type { TraceStore } from '@basalt/trace';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAdmin } from './volume-api';

export interface TraceRouteDeps {
  readonly traces: TraceStore;
  readonly context: (req: FastifyRequest) => RequestContext;
}

/** Request ids as gateways and Basalt make them: `req-<uuid>` and the like, nothing that needs escaping. */
const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$/;

/**
 * `GET /v3/{project_id}/traces/{request_id}` (admin only): every span the request caused, in
 * every process, as trees (children under their parents, in the order they began).
 */
export function registerTraceRoutes(app: FastifyInstance, deps: TraceRouteDeps): void {
  // only under a project: `/v3/traces/…` would shadow the volumes of a project named "traces"
  app.get('/v3/:project_id/traces/:request_id', { schema: { tags: ['traces'] } }, async (req) => {
    requireAdmin(deps.context(req));
    const requestId = (req.params as { request_id: string }).request_id;
    if (!REQUEST_ID.test(requestId)) throw new InvalidInputError(`Invalid request id: ${requestId}`);
    const found = await deps.traces.forRequest(requestId);
    if (found.traces.length === 0) throw new NotFoundError(`No trace of request ${requestId} was found.`);
    return found;
  });
}
