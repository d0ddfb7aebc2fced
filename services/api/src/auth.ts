import { UnauthorizedError } from '@basalt/errors';
import type { TokenSigner } from './tokens';

/** Who is calling, as the API sees it. */
export interface Caller {
  readonly userId: string;
  readonly projectId: string;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
}

const SAFE_ID = /^[A-Za-z0-9_.@-]{1,255}$/;

export interface Authenticator {
  authenticate(token: string | undefined): Caller;
}

/**
 * Development mode, as python-cinderclient's noauth plugin speaks it: `X-Auth-Token: user:project`
 * (or just `user`, then the project is named the same). As in Cinder, the caller is admin of the
 * project it names.
 */
export class NoAuthAuthenticator implements Authenticator {
  authenticate(token: string | undefined): Caller {
    if (!token) throw new UnauthorizedError('Authentication required: send X-Auth-Token user:project.');
    const [userId, project, ...rest] = token.split(':');
    const projectId = project ?? userId;
    if (!userId || !projectId || !SAFE_ID.test(userId) || !SAFE_ID.test(projectId) || rest.length > 0) {
      throw new UnauthorizedError('Invalid X-Auth-Token: expected user:project.');
    }
    return { userId, projectId, roles: ['admin'], isAdmin: true };
  }
}

/** Tokens issued by the built-in identity API. */
export class TokenAuthenticator implements Authenticator {
  constructor(private readonly signer: TokenSigner) {}

  authenticate(token: string | undefined): Caller {
    if (!token) throw new UnauthorizedError('Authentication required.');
    const claims = this.signer.verify(token);
    if (!claims) throw new UnauthorizedError('The request you have made requires authentication.');
    return {
      userId: claims.user_id,
      projectId: claims.project_id,
      roles: claims.roles,
      isAdmin: claims.roles.includes('admin'),
    };
  }
}
