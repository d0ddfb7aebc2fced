import { randomBytes } from 'node:crypto';
import { ForbiddenError, InvalidInputError, UnauthorizedError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type IdentityStore, identityId } from './identity-store';
import type { TokenClaims, TokenSigner } from './tokens';

export interface IdentityOptions {
  readonly identityUrl: () => string;
  readonly volumeUrl: () => string;
  readonly computeUrl: () => string;
  readonly imageUrl: () => string;
  readonly expirationSec: number;
}

const DOMAIN = { id: 'default', name: 'Default' };
/** A token names the user's role and those it implies, as Keystone's default roles do. */
const IMPLIED_ROLES = {
  admin: ['admin', 'member', 'reader'],
  member: ['member', 'reader'],
  reader: ['reader'],
} as const;
const V3 = (base: string) => ({
  id: 'v3.14',
  status: 'stable',
  updated: '2020-04-07T00:00:00Z',
  links: [{ rel: 'self', href: `${base}/v3/` }],
  'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
});

/**
 * A Keystone v3 subset, enough for python-openstackclient and keystoneauth: version discovery and
 * password authentication scoped to a project, answered with a signed token and a catalog; for
 * admins, the one domain and projects made and removed by name (the tests' own projects).
 */
export function registerIdentityRoutes(
  app: FastifyInstance,
  deps: { store: IdentityStore; signer: TokenSigner },
  options: IdentityOptions,
): void {
  app.get('/', async (_req, reply) => {
    reply.code(300);
    return { versions: { values: [V3(options.identityUrl())] } };
  });
  app.get('/v3', async () => ({ version: V3(options.identityUrl()) }));
  app.get('/v3/', async () => ({ version: V3(options.identityUrl()) }));

  app.post('/v3/auth/tokens', async (req, reply) => {
    const { name, password, project } = readPasswordAuth(req.body);
    const user = deps.store.authenticate(name, password);
    if (!user) throw new UnauthorizedError('The request you have made requires authentication.');
    if (project !== undefined && project !== user.projectName && project !== user.projectId) {
      throw new UnauthorizedError(`User ${name} has no role on project ${project}.`);
    }
    const now = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = {
      user_id: user.id,
      user_name: user.name,
      project_id: user.projectId,
      project_name: user.projectName,
      roles: IMPLIED_ROLES[user.role],
      iat: now,
      exp: now + options.expirationSec,
      audit_id: randomBytes(16).toString('base64url'),
    };
    reply.code(201).header('X-Subject-Token', deps.signer.sign(claims));
    return { token: tokenBody(claims, options) };
  });

  /** An admin's token, else 401 or 403 as Keystone answers. */
  const requireAdmin = (req: FastifyRequest) => {
    const claims = deps.signer.verify(String(req.headers['x-auth-token'] ?? ''));
    if (!claims) throw new UnauthorizedError('The request you have made requires authentication.');
    if (!claims.roles.includes('admin')) {
      throw new ForbiddenError('You are not authorized to perform the requested action.');
    }
  };
  app.get('/v3/domains', async (req) => {
    requireAdmin(req);
    const name = (req.query as { name?: string }).name;
    return { domains: name === undefined || name === DOMAIN.name ? [domainBody(options)] : [] };
  });
  // a project is a scope and nothing more: one made here is the project its name names on every
  // api process (its id derived from the name, as a configured user's), and holds no user
  app.post('/v3/projects', async (req, reply) => {
    requireAdmin(req);
    const body = (req.body as { project?: { name?: unknown; description?: unknown } } | null)?.project;
    if (typeof body?.name !== 'string' || body.name.length === 0 || body.name.length > 64) {
      throw new InvalidInputError('project.name must be a string of 1 to 64 characters.');
    }
    const description = typeof body.description === 'string' ? body.description : '';
    const id = identityId('project', body.name);
    reply.code(201);
    return {
      project: {
        id,
        name: body.name,
        description,
        domain_id: DOMAIN.id,
        enabled: true,
        is_domain: false,
        parent_id: DOMAIN.id,
        tags: [],
        options: {},
        links: { self: `${options.identityUrl()}/v3/projects/${id}` },
      },
    };
  });
  app.delete('/v3/projects/:project_id', async (req, reply) => {
    requireAdmin(req);
    reply.code(204);
    return '';
  });

  app.get('/v3/auth/tokens', async (req) => {
    const subject = req.headers['x-subject-token'];
    const claims = typeof subject === 'string' ? deps.signer.verify(subject) : undefined;
    if (!claims || !deps.signer.verify(String(req.headers['x-auth-token'] ?? ''))) {
      throw new UnauthorizedError('The request you have made requires authentication.');
    }
    return { token: tokenBody(claims, options) };
  });
}

function domainBody(options: IdentityOptions) {
  return {
    ...DOMAIN,
    description: 'The default domain',
    enabled: true,
    tags: [],
    options: {},
    links: { self: `${options.identityUrl()}/v3/domains/${DOMAIN.id}` },
  };
}

function tokenBody(claims: TokenClaims, options: IdentityOptions) {
  const endpoints = (type: string, name: string, url: string) => ({
    id: identityId('service', type),
    type,
    name,
    endpoints: ['public', 'internal', 'admin'].map((iface) => ({
      id: identityId('endpoint', `${type}:${iface}`),
      interface: iface,
      region: 'RegionOne',
      region_id: 'RegionOne',
      url,
    })),
  });
  const volume = `${options.volumeUrl()}/v3/${claims.project_id}`;
  return {
    methods: ['password'],
    user: { id: claims.user_id, name: claims.user_name, domain: DOMAIN, password_expires_at: null },
    project: { id: claims.project_id, name: claims.project_name, domain: DOMAIN },
    roles: claims.roles.map((r) => ({ id: identityId('role', r), name: r })),
    is_domain: false,
    issued_at: new Date(claims.iat * 1000).toISOString(),
    expires_at: new Date(claims.exp * 1000).toISOString(),
    audit_ids: [claims.audit_id],
    catalog: [
      endpoints('identity', 'keystone', `${options.identityUrl()}/v3`),
      endpoints('volumev3', 'cinderv3', volume),
      endpoints('block-storage', 'cinder', volume),
      endpoints('compute', 'nova', `${options.computeUrl()}/v2.1`),
      endpoints('image', 'glance', options.imageUrl()),
    ],
  };
}

function readPasswordAuth(body: unknown): { name: string; password: string; project?: string } {
  const b = body as {
    auth?: {
      identity?: { methods?: unknown; password?: { user?: { name?: unknown; password?: unknown } } };
      scope?: { project?: { name?: unknown; id?: unknown } };
    };
  };
  const identity = b?.auth?.identity;
  if (!Array.isArray(identity?.methods) || !identity.methods.includes('password')) {
    throw new InvalidInputError('Only password authentication is supported.');
  }
  const user = identity.password?.user;
  if (typeof user?.name !== 'string' || typeof user.password !== 'string') {
    throw new InvalidInputError('auth.identity.password.user needs name and password.');
  }
  const scope = b.auth?.scope?.project;
  const project =
    typeof scope?.name === 'string' ? scope.name : typeof scope?.id === 'string' ? scope.id : undefined;
  return { name: user.name, password: user.password, ...(project === undefined ? {} : { project }) };
}
