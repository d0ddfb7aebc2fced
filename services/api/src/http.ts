import { isRequestId, newRequestId, newTraceparent, type RequestContext } from '@basalt/context';
import { errorMessage, InvalidInputError, NotFoundError } from '@basalt/errors';
import { type Logger, requestLogger } from '@basalt/log';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { faultFor } from './faults';
import { type RateLimiter, registerRateLimit } from './rate-limit';

/** Seconds a client is told to wait after a 503: the database or broker is expected back soon. */
export const RETRY_AFTER_SEC = 2;

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking and how to trace it; set before any handler runs. */
    basalt: RequestContext;
    basaltLog: Logger;
  }
}

/**
 * A Fastify instance with what every Basalt HTTP endpoint shares: the gateway's request id kept
 * (else a new `req-<uuid>`) and echoed, the client's request rate limited, the caller's W3C trace
 * context continued (or a new one begun) for the messages the request sends, one log line per
 * response, and every error turned into Cinder's fault body — a 5xx only for a real server fault.
 */
export function createHttpApp(log: Logger, bodyLimit: number, limiter?: RateLimiter): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // the router's own refusals (a malformed URL, an over-long path parameter) as Cinder's faults too
    frameworkErrors: (error, _req, reply) => {
      const fault =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? faultFor(new NotFoundError('The resource could not be found.'))
          : faultFor(new InvalidInputError('Malformed request URL.'));
      (reply as FastifyReply).code(fault.status).send(fault.body);
    },
  });
  // JSON only: a text body is refused with 415 instead of reaching a handler as a string
  app.removeContentTypeParser('text/plain');
  // an empty JSON body is no body, as Cinder takes it (clients send the header on DELETE too)
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) =>
    body === '' ? done(null, undefined) : json(req, body as string, done),
  );
  app.decorateRequest('basalt', null as unknown as RequestContext);
  app.decorateRequest('basaltLog', null as unknown as Logger);
  app.addHook('onRequest', async (req, reply) => {
    const given = req.headers['x-openstack-request-id'];
    const gateway = typeof given === 'string' && isRequestId(given) ? given : undefined;
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    req.basalt = {
      requestId: gateway ?? newRequestId(),
      ...(gateway ? { globalRequestId: gateway } : {}),
      roles: [],
      isAdmin: false,
      traceparent: newTraceparent(traceparent),
    };
    req.basaltLog = requestLogger(log, req.basalt);
    reply.header('x-openstack-request-id', req.basalt.requestId);
  });
  if (limiter) registerRateLimit(app, limiter);
  app.addHook('onResponse', async (req, reply) => {
    req.basaltLog.info(
      { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'http request',
    );
  });
  app.setErrorHandler(async (error, req, reply) => {
    const fault = faultFor(error);
    if (fault.status === 503) {
      // passing trouble: said once per request at warn, not as a server fault
      req.basaltLog.warn({ err: errorMessage(error) }, 'service unavailable');
      reply.header('retry-after', String(RETRY_AFTER_SEC));
    } else if (fault.status >= 500)
      req.basaltLog.error({ err: errorMessage(error), stack: (error as Error).stack }, 'request failed');
    reply.code(fault.status).send(fault.body);
  });
  app.setNotFoundHandler(async (_req, reply) => {
    const fault = faultFor({ statusCode: 404, message: 'The resource could not be found.' });
    reply.code(404).send(fault.body);
  });
  return app;
}
