import { BasaltError } from '@basalt/errors';

/** A Keystone v3 password authentication scoped to a project. */
export interface PasswordAuth {
  /** Keystone's v3 URL; a trailing slash is dropped. */
  readonly authUrl: string;
  readonly username: string;
  readonly password: string;
  readonly projectName: string;
  readonly userDomainName: string;
  readonly projectDomainName: string;
  readonly timeoutMs: number;
}

/**
 * Keystone gave no token: `status` is its answer, absent when it could not be reached. Retryable
 * unless Keystone refused the credentials. The message never holds the password.
 */
export class KeystoneTokenError extends BasaltError {
  constructor(
    message: string,
    readonly status: number | undefined,
    cause?: unknown,
  ) {
    super(message, { retryable: status === undefined || status >= 500, cause });
  }
}

/** A token is renewed this long before it expires, so no request carries a dying one. */
const RENEW_MARGIN_MS = 120_000;

/**
 * A service user's token, obtained on first use and again before it expires or when the service
 * it was shown to refuses it; concurrent askers share one request to Keystone.
 */
export class KeystoneTokenClient {
  private current?: { readonly id: string; readonly expiresAt: number };
  private issuing?: Promise<string>;

  constructor(private readonly auth: PasswordAuth) {}

  /** A valid token; `refused`, the token a service just answered 401 to, is not given again. */
  token(refused?: string): Promise<string> {
    if (refused !== undefined && this.current?.id === refused) this.current = undefined;
    if (this.current && this.current.expiresAt - RENEW_MARGIN_MS > Date.now()) {
      return Promise.resolve(this.current.id);
    }
    this.issuing ??= this.issue().finally(() => {
      this.issuing = undefined;
    });
    return this.issuing;
  }

  private async issue(): Promise<string> {
    const a = this.auth;
    const url = `${a.authUrl.replace(/\/+$/, '')}/auth/tokens?nocatalog`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: a.username, domain: { name: a.userDomainName }, password: a.password },
              },
            },
            scope: { project: { name: a.projectName, domain: { name: a.projectDomainName } } },
          },
        }),
        signal: AbortSignal.timeout(a.timeoutMs),
      });
    } catch (error) {
      // fetch's own error is a bare "fetch failed": the reason is its cause
      const cause = (error as { cause?: unknown }).cause ?? error;
      throw new KeystoneTokenError(`Keystone at ${a.authUrl} is unreachable`, undefined, cause);
    }
    const id = response.headers.get('x-subject-token');
    const body = (await response.json().catch(() => undefined)) as
      | { token?: { expires_at?: string } }
      | undefined;
    const expiresAt = Date.parse(body?.token?.expires_at ?? '');
    if (response.status !== 201 || !id || !Number.isFinite(expiresAt)) {
      throw new KeystoneTokenError(
        `Keystone refused the service user ${a.username} a token (${response.status})`,
        response.status,
      );
    }
    this.current = { id, expiresAt };
    return id;
  }
}
