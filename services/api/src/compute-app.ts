import type { FastifyInstance, FastifyRequest } from 'fastify';
import { registerAuthHook } from './auth-hook';
import { type ComputeRouteDeps, registerComputeRoutes } from './compute-routes';
import { createHttpApp } from './http';
import { type ListenerOptions, registerPolicy } from './policy-hook';
import { COMPUTE_ROUTE_POLICIES } from './policy-routes';
import { negotiateMicroversion } from './versions';

export const COMPUTE_MIN_VERSION = '2.1';
export const COMPUTE_MAX_VERSION = '2.73';

declare module 'fastify' {
  interface FastifyRequest {
    /** The compute microversion the request asked for (2.1 when it asked for none). */
    computeVersion: string;
  }
}

/** The compute API (Nova v2.1 subset): version discovery, flavors, servers and their volumes. */
export function buildComputeApp(
  options: ListenerOptions,
  routes: Omit<ComputeRouteDeps, 'context' | 'authorize' | 'can'>,
): FastifyInstance {
  const app = createHttpApp(options.log, options.bodyLimit, options.rateLimiter);
  // everything under /v2.1/ but the version document itself needs a caller
  registerAuthHook(app, {
    authenticator: options.authenticator,
    protects: (route) => route.startsWith('/v2.1/') && route.length > 6,
  });
  app.decorateRequest('computeVersion', COMPUTE_MIN_VERSION);
  app.addHook('preHandler', async (req, reply) => {
    const route = req.routeOptions.url ?? '';
    if (!route.startsWith('/v2.1/') || route.length <= 6) return;
    req.computeVersion = requestedVersion(req);
    reply
      .header('OpenStack-API-Version', `compute ${req.computeVersion}`)
      .header('X-OpenStack-Nova-API-Version', req.computeVersion)
      .header('Vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
  });

  const version = (status: string) => ({
    id: 'v2.1',
    status,
    version: COMPUTE_MAX_VERSION,
    min_version: COMPUTE_MIN_VERSION,
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${routes.baseUrl()}/v2.1/` }],
  });
  registerPolicy(app, options.policy, COMPUTE_ROUTE_POLICIES);
  app.get('/', async () => ({ versions: [version('CURRENT')] }));
  const document = async () => ({
    version: {
      ...version('CURRENT'),
      links: [
        { rel: 'self', href: `${routes.baseUrl()}/v2.1/` },
        { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
      ],
      'media-types': [
        { base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' },
      ],
    },
  });
  app.get('/v2.1', document);
  app.get('/v2.1/', document);

  const policy = options.policy;
  registerComputeRoutes(app, {
    ...routes,
    context: (req) => req.basalt,
    authorize: (req, rule) => {
      const { userId = '', projectId = '', roles } = req.basalt;
      policy.authorize(rule, policy.credentials({ userId, projectId, roles }), {
        project_id: projectId,
        user_id: userId,
      });
    },
    can: (req, rule, projectId) => {
      const { userId = '', projectId: own = '', roles } = req.basalt;
      return policy.enforce(rule, policy.credentials({ userId, projectId: own, roles }), {
        project_id: projectId,
        user_id: userId,
      });
    },
  });
  return app;
}

/** `OpenStack-API-Version: compute X.Y`, else nova's older `X-OpenStack-Nova-API-Version: X.Y`. */
function requestedVersion(req: FastifyRequest): string {
  const modern = req.headers['openstack-api-version'];
  const legacy = req.headers['x-openstack-nova-api-version'];
  const header =
    modern !== undefined && /compute/i.test(String(modern))
      ? modern
      : legacy !== undefined
        ? `compute ${String(legacy)}`
        : undefined;
  return negotiateMicroversion(header, 'compute', COMPUTE_MIN_VERSION, COMPUTE_MAX_VERSION);
}
