import { InvalidInputError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from './auth';
import { createHttpApp } from './http';
import type { Policy } from './policy';
import { registerPolicy } from './policy-hook';
import { VOLUME_ROUTE_POLICIES } from './policy-routes';
import type { RateLimiter } from './rate-limit';
import { negotiateVersion, versionDocument } from './versions';
import { registerVolumeRoutes, type VolumeRouteDeps } from './volume-routes';

export interface VolumeAppOptions {
  readonly log: Logger;
  readonly bodyLimit: number;
  readonly authenticator: Authenticator;
  readonly policy: Policy;
  readonly rateLimiter: RateLimiter;
  readonly ready: () => Promise<boolean>;
}

/** The volume API (Cinder v3 subset) with health endpoints and its OpenAPI document. */
export async function buildVolumeApp(
  options: VolumeAppOptions,
  routes: Omit<VolumeRouteDeps, 'context'>,
): Promise<FastifyInstance> {
  const app = createHttpApp(options.log, options.bodyLimit, options.rateLimiter);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Basalt volume API (Cinder v3 subset)', version: '3.0' },
      components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
      security: [{ token: [] }],
    },
  });

  app.addHook('preHandler', async (req, reply) => {
    const params = req.params as { project_id?: string };
    if (req.url.startsWith('/v3/')) {
      const version = negotiateVersion(req.headers['openstack-api-version']);
      reply.header('OpenStack-API-Version', `volume ${version}`).header('Vary', 'OpenStack-API-Version');
    }
    // everything under /v3/ but the version document itself needs a caller
    const route = req.routeOptions.url ?? '';
    if (!route.startsWith('/v3/') || route.length <= 4) return;
    const caller = options.authenticator.authenticate(headerValue(req.headers['x-auth-token']));
    if (params.project_id !== undefined && caller.projectId !== params.project_id) {
      throw new InvalidInputError(
        `Malformed request URL: URL's project_id '${params.project_id}' doesn't match Context's project_id '${caller.projectId}'`,
      );
    }
    req.basalt = {
      ...req.basalt,
      userId: caller.userId,
      projectId: caller.projectId,
      roles: caller.roles,
      isAdmin: caller.isAdmin,
    };
    req.basaltLog = req.basaltLog.child({ project_id: caller.projectId, user_id: caller.userId });
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
  return app;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
