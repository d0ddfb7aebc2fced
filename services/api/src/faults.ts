import { isTransientDatabaseError, QuotaExceededError } from '@basalt/db';
import { BasaltError, ConflictError, InvalidInputError, NotFoundError } from '@basalt/errors';
import { RpcError } from '@basalt/rpc';

/** A 401: the caller did not prove who it is. */
export class UnauthorizedError extends BasaltError {}
/** A 403: the caller is known but may not do this. */
export class ForbiddenError extends BasaltError {}
/** A 409: the resource is in a state that forbids the request now (nova's InstanceInvalidState). */
export class StateConflictError extends BasaltError {}
/** A 406: an API microversion this server does not serve. */
export class VersionNotAcceptableError extends BasaltError {}

/** Cinder's fault names by HTTP status (cinder/api/openstack/wsgi.py). */
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  500: 'computeFault',
  503: 'serviceUnavailable',
};

export interface Fault {
  readonly status: number;
  readonly body: Record<string, { code: number; message: string }>;
}

export function fault(status: number, message: string): Fault {
  return { status, body: { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } } };
}

/** Maps any error to Cinder's fault body; only a genuine server fault becomes a 5xx. */
export function faultFor(error: unknown): Fault {
  if (error instanceof UnauthorizedError) return fault(401, error.message);
  if (error instanceof ForbiddenError) return fault(403, error.message);
  if (error instanceof VersionNotAcceptableError) return fault(406, error.message);
  if (error instanceof StateConflictError) return fault(409, error.message);
  if (error instanceof QuotaExceededError) return fault(413, error.message);
  if (error instanceof NotFoundError) return fault(404, error.message);
  if (error instanceof ConflictError || error instanceof InvalidInputError) return fault(400, error.message);
  if (error instanceof RpcError && error.retryable) {
    return fault(503, 'The volume service is temporarily unavailable; retry the request.');
  }
  if (isTransientDatabaseError(error)) {
    return fault(503, 'The volume database is temporarily unavailable; retry the request.');
  }
  const fastify = error as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (fastify.validation) return fault(400, `Invalid input received: ${fastify.message}`);
  if (fastify.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fault(413, 'Request is too large.');
  if (fastify.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return fault(415, 'The request body must be application/json.');
  }
  if (fastify.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return fault(400, 'The request body is empty.');
  if (fastify instanceof SyntaxError || fastify.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return fault(400, `Malformed request body: ${fastify.message}`);
  }
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return fault(fastify.statusCode, fastify.message ?? 'Bad request.');
  }
  return fault(500, 'The server has either erred or is incapable of performing the requested operation.');
}
