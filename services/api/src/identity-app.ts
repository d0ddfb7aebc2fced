import { randomBytes } from 'node:crypto';
import { InvalidInputError, UnauthorizedError } from '@basalt/errors';
import type { FastifyInstance } from 'fastify';
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
 * password authentication scoped to a project, answered with a signed token and a catalog.
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

  app.get('/v3/auth/tokens', async (req) => {
    const subject = req.headers['x-subject-token'];
    const claims = typeof subject === 'string' ? deps.signer.verify(subject) : undefined;
    if (!claims || !deps.signer.verify(String(req.headers['x-auth-token'] ?? ''))) {
      throw new UnauthorizedError('The request you have made requires authentication.');
    }
    return { token: tokenBody(claims, options) };
  });
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
