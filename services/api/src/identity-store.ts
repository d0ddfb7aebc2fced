import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@basalt/config';

export interface IdentityUser {
  readonly id: string;
  readonly name: string;
  readonly password: string;
  readonly projectId: string;
  readonly projectName: string;
  readonly role: Role;
}

const ROLES = ['admin', 'member', 'reader'] as const;
type Role = (typeof ROLES)[number];

/** Stable Keystone-style hex ids derived from names, so every api process agrees on them. */
export const identityId = (kind: string, name: string) =>
  createHash('sha256').update(`${kind}:${name}`).digest('hex').slice(0, 32);

/** Users, projects and roles from `[identity] users` (name:password:project:role). */
export class IdentityStore {
  private readonly users = new Map<string, IdentityUser>();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [name, password, project, role, ...rest] = entry.split(':');
      if (!name || !password || !project || !ROLES.includes(role as Role) || rest.length > 0) {
        throw new ConfigError(
          `identity.users: "${name ?? ''}:…" must be name:password:project:admin|member|reader`,
        );
      }
      this.users.set(name, {
        id: identityId('user', name),
        name,
        password,
        projectId: identityId('project', project),
        projectName: project,
        role: role as Role,
      });
    }
  }

  /** The user if the password matches (compared in constant time). */
  authenticate(name: string, password: string): IdentityUser | undefined {
    const user = this.users.get(name);
    if (!user) return undefined;
    const a = createHash('sha256').update(password).digest();
    const b = createHash('sha256').update(user.password).digest();
    return timingSafeEqual(a, b) ? user : undefined;
  }
}
