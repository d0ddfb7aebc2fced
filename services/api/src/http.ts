import {
  gatewayTraceparent,
  isRequestId,
  newRequestId,
  newTraceparent,
  parseTraceparent,
  type RequestContext,
} from '@basalt/context';
import { errorMessage, InvalidInputError, NotFoundError } from '@basalt/errors';
import { type Logger, requestLogger } from '@basalt/log';
import {
  type Context,
  context,
  contextOfRequest,
  contextWithSpan,
  type Span,
  SpanKind,
  SpanStatusCode,
  startSpan,
  traceparentOf,
  withRequest,
} from '@basalt/trace';
import Fastify, { type FastifyInstance, type FastifyReply, type RouteHandlerMethod } from 'fastify';
import { faultFor } from './faults';
import { type RateLimiter, registerRateLimit } from './rate-limit';

/** Seconds a client is told to wait after a 503: the database or broker is expected back soon. */
export const RETRY_AFTER_SEC = 2;

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking and how to trace it; set before any handler runs. */
    basalt: RequestContext;
    basaltLog: Logger;
    /** The request's span, and the context its handler runs in (what it starts is the span's child). */
    traceSpan: Span;
    traceContext: Context;
    traceFailed: boolean;
  }
}

/**
 * A Fastify instance with what every Basalt HTTP endpoint shares: the gateway's request id kept
 * (else a new `req-<uuid>`) and echoed, the client's request rate limited, a span per request continuing the caller's W3C trace
 * context (or beginning one), the parent of what its handler does and sends, one log line per
 * response, and every error turned into Cinder's fault body — a 5xx only for a real server fault.
 * A path parameter longer than `maxParamLength` is a 404.
 */
export function createHttpApp(
  log: Logger,
  bodyLimit: number,
  limiter?: RateLimiter,
  maxParamLength = 100,
): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit,
    maxParamLength,
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
  app.decorateRequest('traceSpan', null as unknown as Span);
  app.decorateRequest('traceContext', null as unknown as Context);
  app.decorateRequest('traceFailed', false);
  // every handler runs in its request's span, whatever route it is
  app.addHook('onRoute', (route) => {
    const handler = route.handler as RouteHandlerMethod;
    route.handler = function (req, reply) {
      return context.with(withRequest(req.traceContext, req.basalt), handler, this, req, reply);
    };
  });
  app.addHook('onRequest', async (req, reply) => {
    const given = req.headers['x-openstack-request-id'];
    const gateway = typeof given === 'string' && isRequestId(given) ? given : undefined;
    const header = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    // the caller's trace wins; else every request with the gateway's id joins that id's trace
    const traceparent = parseTraceparent(header) ? header : gateway ? gatewayTraceparent(gateway) : undefined;
    const requestId = gateway ?? newRequestId();
    const incoming = { requestId, roles: [], isAdmin: false, traceparent };
    const parent = contextOfRequest(incoming);
    req.traceSpan = startSpan(`${req.method} ${req.routeOptions.url ?? 'unknown route'}`, {
      kind: SpanKind.SERVER,
      parent,
      attributes: { 'http.request.method': req.method, 'url.path': req.url.split('?')[0] as string },
    });
    req.traceContext = contextWithSpan(parent, req.traceSpan);
    req.basalt = {
      requestId,
      ...(gateway ? { globalRequestId: gateway } : {}),
      roles: [],
      isAdmin: false,
      traceparent: req.traceSpan.isRecording() ? traceparentOf(req.traceSpan) : newTraceparent(traceparent),
    };
    req.basaltLog = requestLogger(log, req.basalt);
    reply.header('x-openstack-request-id', req.basalt.requestId);
  });
  if (limiter) registerRateLimit(app, limiter);
  app.addHook('onResponse', async (req, reply) => {
    const span = req.traceSpan;
    span.setAttribute('http.response.status_code', reply.statusCode);
    // a refused request is where a user's action failed: the span says so, with the fault's message
    if (reply.statusCode >= 400 && !req.traceFailed) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${reply.statusCode}` });
    }
    span.end();
    req.basaltLog.info(
      { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'http request',
    );
  });
  app.setErrorHandler(async (error, req, reply) => {
    const fault = faultFor(error);
    req.traceFailed = true;
    req.traceSpan.setStatus({
      code: SpanStatusCode.ERROR,
      message: `HTTP ${fault.status}: ${errorMessage(error)}`,
    });
    if (fault.status === 503) {
      // passing trouble: said once per request at warn, not as a server fault
      req.basaltLog.warn({ err: errorMessage(error) }, 'service unavailable');
      reply.header('retry-after', String(RETRY_AFTER_SEC));
    } else if (fault.status >= 500)
      req.basaltLog.error({ err: errorMessage(error), stack: (error as Error).stack }, 'request failed');
    if (fault.retryAfter !== undefined) reply.header('Retry-After', fault.retryAfter);
    reply.code(fault.status).send(fault.body);
  });
  app.setNotFoundHandler(async (_req, reply) => {
    const fault = faultFor({ statusCode: 404, message: 'The resource could not be found.' });
    reply.code(404).send(fault.body);
  });
  return app;
}
