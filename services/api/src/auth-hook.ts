import { InvalidInputError, UnauthorizedError } from '@basalt/errors';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from './auth';

export interface AuthHookOptions {
  readonly authenticator: Authenticator;
  /** Whether a route (its URL pattern) needs a caller; version documents and health checks do not. */
  readonly protects: (route: string) => boolean;
}

/**
 * The one authentication step of every API listener, where keystonemiddleware's auth_token sits
 * in front of Cinder and Nova: before the body is read, the `X-Auth-Token` becomes the request's
 * caller (user, project, roles), or the request ends with a 401 carrying `WWW-Authenticate`, or a
 * 503 when the token cannot be checked. A `{project_id}` in the URL must be the token's project.
 */
export function registerAuthHook(app: FastifyInstance, options: AuthHookOptions): void {
  app.addHook('onRequest', async (req, reply) => {
    if (!options.protects(req.routeOptions.url ?? '')) return;
    const given = req.headers['x-auth-token'];
    let caller: Awaited<ReturnType<Authenticator['authenticate']>>;
    try {
      caller = await options.authenticator.authenticate(Array.isArray(given) ? given[0] : given);
    } catch (error) {
      const challenge = error instanceof UnauthorizedError ? options.authenticator.challenge() : undefined;
      if (challenge) reply.header('WWW-Authenticate', challenge);
      throw error;
    }
    const { project_id: urlProject } = req.params as { project_id?: string };
    if (urlProject !== undefined && caller.projectId !== urlProject) {
      throw new InvalidInputError(
        `Malformed request URL: URL's project_id '${urlProject}' doesn't match Context's project_id '${caller.projectId}'`,
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
}
