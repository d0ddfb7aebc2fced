import { FAULTS, type FaultKind, faultKindOf } from '@basalt/errors';

export interface Fault {
  readonly status: number;
  readonly body: Record<string, { code: number; message: string; retryAfter?: string }>;
  /** The `Retry-After` header the fault is sent with, as its body says it. */
  readonly retryAfter?: string;
}

function faultBody(kind: FaultKind, message: string): Fault {
  const { retryAfter } = kind;
  if (retryAfter === undefined)
    return { status: kind.status, body: { [kind.name]: { code: kind.status, message } } };
  return {
    status: kind.status,
    body: { [kind.name]: { code: kind.status, message, retryAfter } },
    retryAfter,
  };
}

/** Cinder's fault names by HTTP status (cinder/api/openstack/wsgi.py), for Fastify's own errors. */
const FAULTS_BY_STATUS = new Map<number, FaultKind>(
  [...Object.values(FAULTS), { status: 405, name: 'badMethod' }].map((kind) => [kind.status, kind]),
);

const fastifyFault = (status: number, message: string) =>
  faultBody({ status, name: FAULTS_BY_STATUS.get(status)?.name ?? 'computeFault' }, message);

/**
 * Maps any error to Cinder's fault body by the kind the error carries; only a genuine server
 * fault becomes a 500, and a 5xx says its kind's words rather than the error's own.
 */
export function faultFor(error: unknown): Fault {
  const kind = faultKindOf(error);
  if (kind) return faultBody(kind, kind.publicMessage ?? (error as Error).message);
  const fastify = error as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (fastify.validation) return fastifyFault(400, `Invalid input received: ${fastify.message}`);
  if (fastify.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fastifyFault(413, 'Request is too large.');
  if (fastify.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return fastifyFault(415, 'The request body must be application/json.');
  }
  if (fastify instanceof SyntaxError || fastify.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return fastifyFault(400, `Malformed request body: ${fastify.message}`);
  }
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return fastifyFault(fastify.statusCode, fastify.message ?? 'Bad request.');
  }
  return faultBody(FAULTS.computeFault, FAULTS.computeFault.publicMessage);
}
