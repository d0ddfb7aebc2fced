import { NotFoundError } from '@basalt/errors';
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { registerAuthHook } from './auth-hook';
import { createHttpApp } from './http';
import { type ListenerOptions, registerPolicy } from './policy-hook';
import { VOLUME_ROUTE_POLICIES } from './policy-routes';
import { registerTraceRoutes, type TraceRouteDeps } from './trace-routes';
import { atLeast, MIN_VERSION, negotiateVersion, versionDocument } from './versions';
import { registerVolumeRoutes, type VolumeRouteDeps } from './volume-routes';

declare module 'fastify' {
  interface FastifyRequest {
    /** The microversion the request asked for (`OpenStack-API-Version: volume 3.x`), else 3.0. */
    apiVersion: string;
  }
}

export interface VolumeAppOptions extends ListenerOptions {
  readonly ready: () => Promise<boolean>;
}

/** The volume API (Cinder v3 subset) with health endpoints and its OpenAPI document. */
export async function buildVolumeApp(
  options: VolumeAppOptions,
  routes: Omit<VolumeRouteDeps, 'context'> & Omit<TraceRouteDeps, 'context'>,
): Promise<FastifyInstance> {
  const app = createHttpApp(options.log, options.bodyLimit, options.rateLimiter);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Basalt volume API (Cinder v3 subset)', version: '3.0' },
      components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
      security: [{ token: [] }],
    },
  });

  // everything under /v3/ but the version document itself needs a caller
  registerAuthHook(app, {
    authenticator: options.authenticator,
    protects: (route) => route.startsWith('/v3/') && route.length > 4,
  });
  app.decorateRequest('apiVersion', MIN_VERSION);
  app.addHook('preHandler', async (req, reply) => {
    if (req.url.startsWith('/v3/')) {
      const version = negotiateVersion(req.headers['openstack-api-version']);
      req.apiVersion = version;
      // a resource newer than the asked microversion does not exist at it (Cinder's 404)
      const minVersion = (req.routeOptions.config as { minVersion?: string }).minVersion;
      if (minVersion && !atLeast(version, minVersion)) {
        throw new NotFoundError(`The resource could not be found at microversion ${version}.`);
      }
      reply.header('OpenStack-API-Version', `volume ${version}`).header('Vary', 'OpenStack-API-Version');
    }
  });

  registerPolicy(app, options.policy, VOLUME_ROUTE_POLICIES);

  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    reply.code(300);
    return { versions: [versionDocument(routes.baseUrl())] };
  });
  app.get('/v3', { schema: { hide: true } }, async () => ({ versions: [versionDocument(routes.baseUrl())] }));
  app.get('/v3/', { schema: { hide: true } }, async () => ({
    versions: [versionDocument(routes.baseUrl())],
  }));
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const ready = await options.ready();
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready' };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerVolumeRoutes(app, { ...routes, context: (req) => req.basalt });
  registerTraceRoutes(app, { traces: routes.traces, context: (req) => req.basalt });
  return app;
}
