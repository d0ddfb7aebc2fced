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

/** One way of turning an `X-Auth-Token` into a caller; `[api] auth_strategy` picks it. */
export interface Authenticator {
  /** The caller, else an UnauthorizedError (401), or a retryable error when the check itself failed. */
  authenticate(token: string | undefined): Promise<Caller>;
  /** The `WWW-Authenticate` value a 401 carries: where to get a token, as keystonemiddleware says it. */
  challenge(): string | undefined;
}

/** keystonemiddleware's challenge: `Keystone uri="<identity URL>"`. */
export const keystoneChallenge = (uri: string) => `Keystone uri="${uri}"`;

/**
 * Development mode, as python-cinderclient's noauth plugin speaks it: `X-Auth-Token: user:project`
 * (or just `user`, then the project is named the same). As in Cinder, the caller is admin of the
 * project it names.
 */
export class NoAuthAuthenticator implements Authenticator {
  async authenticate(token: string | undefined): Promise<Caller> {
    if (!token) throw new UnauthorizedError('Authentication required: send X-Auth-Token user:project.');
    const [userId, project, ...rest] = token.split(':');
    const projectId = project ?? userId;
    if (!userId || !projectId || !SAFE_ID.test(userId) || !SAFE_ID.test(projectId) || rest.length > 0) {
      throw new UnauthorizedError('Invalid X-Auth-Token: expected user:project.');
    }
    return { userId, projectId, roles: ['admin'], isAdmin: true };
  }

  challenge(): undefined {
    return undefined;
  }
}

/** Tokens issued by the built-in identity API, checked by their signature alone. */
export class BuiltinAuthenticator implements Authenticator {
  constructor(
    private readonly signer: TokenSigner,
    private readonly identityUrl: () => string,
  ) {}

  async authenticate(token: string | undefined): Promise<Caller> {
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

  challenge(): string {
    return keystoneChallenge(`${this.identityUrl()}/v3`);
  }
}
