import { InvalidInputError, UnauthorizedError } from '@basalt/errors';
import type { Logger } from '@basalt/log';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from './auth';
import type { Policy } from './policy';
import type { ApiRoutePolicies, RouteRule } from './policy-routes';
import type { RateLimiter } from './rate-limit';

/** What every API listener of the api process is built with. */
export interface ListenerOptions {
  readonly log: Logger;
  readonly bodyLimit: number;
  readonly authenticator: Authenticator;
  readonly policy: Policy;
  readonly rateLimiter: RateLimiter;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The rule this route checks, attached from the API's route table when the route is added. */
    policy?: RouteRule;
  }
}

/**
 * Every route under the API's prefixes checks its rule before its handler runs: the rule is
 * found in the route table as the route is added (a route the table does not name stops the
 * process at start, so none goes unchecked), and checked after the caller is known. Register it
 * after the authentication hook and before the routes.
 */
export function registerPolicy(app: FastifyInstance, policy: Policy, table: ApiRoutePolicies): void {
  for (const rule of Object.values(table.routes)) {
    for (const name of rulesOf(rule)) {
      if (!policy.has(name)) throw new Error(`route table names unknown policy rule "${name}"`);
    }
  }
  app.addHook('onRoute', (route) => {
    const path = pathUnder(table.prefixes, route.url);
    if (path === undefined) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    for (const method of methods) {
      const rule = table.routes[`${method} ${path}`];
      if (!rule) throw new Error(`no policy rule for ${method} ${route.url}: add it to the route table`);
      route.config = { ...route.config, policy: rule };
    }
  });
  app.addHook('preHandler', async (req) => {
    const rule = req.routeOptions.config.policy;
    if (!rule || (typeof rule !== 'string' && 'none' in rule)) return;
    const ctx = req.basalt;
    if (!ctx.userId || !ctx.projectId) throw new UnauthorizedError('Authentication required.');
    const creds = policy.credentials({ userId: ctx.userId, projectId: ctx.projectId, roles: ctx.roles });
    // what the handlers' admin-only checks and admin views go by: context_is_admin, as in Cinder
    req.basalt = { ...ctx, isAdmin: creds.is_admin };
    policy.authorize(ruleName(rule, req.body), creds, {
      project_id: targetProject(rule, req) ?? ctx.projectId,
      user_id: ctx.userId,
    });
  });
}

/** The route's path below the longest prefix it starts with; undefined outside them (versions, health). */
function pathUnder(prefixes: readonly string[], url: string): string | undefined {
  for (const prefix of prefixes) {
    if (url.startsWith(`${prefix}/`) && url.length > prefix.length + 1) return url.slice(prefix.length);
  }
  return undefined;
}

function rulesOf(rule: RouteRule): string[] {
  if (typeof rule === 'string') return [rule];
  if ('rule' in rule) return [rule.rule];
  if ('actions' in rule) return Object.values(rule.actions);
  return [];
}

function ruleName(rule: Exclude<RouteRule, { none: string }>, body: unknown): string {
  if (typeof rule === 'string') return rule;
  if ('rule' in rule) return rule.rule;
  if (typeof body !== 'object' || body === null || Object.keys(body).length !== 1) {
    throw new InvalidInputError('An action body names exactly one action.');
  }
  const [action] = Object.keys(body) as [string];
  // own keys only: a body naming "constructor" is an unknown action, not Object's
  const name = Object.hasOwn(rule.actions, action) ? rule.actions[action] : undefined;
  if (!name) throw new InvalidInputError(`There is no such action: ${action}`);
  return name;
}

function targetProject(rule: RouteRule, req: FastifyRequest): string | undefined {
  if (typeof rule === 'string' || !('target' in rule)) return undefined;
  return (req.params as Record<string, string | undefined>)[rule.target];
}
