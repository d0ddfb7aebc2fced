import { createHash } from 'node:crypto';
import { type BasaltConfig, ConfigError } from '@basalt/config';
import { errorMessage, ForbiddenError, ServiceUnavailableError, UnauthorizedError } from '@basalt/errors';
import { KeystoneTokenClient, KeystoneTokenError } from '@basalt/keystone';
import type { Logger } from '@basalt/log';
import { type Authenticator, type Caller, keystoneChallenge } from './auth';
import { ExpiringLru } from './expiring-lru';

export interface KeystoneAuthOptions {
  /** Keystone's v3 URL, without a trailing slash. */
  readonly authUrl: string;
  readonly wwwAuthenticateUri: string;
  readonly username: string;
  readonly password: string;
  readonly projectName: string;
  readonly userDomainName: string;
  readonly projectDomainName: string;
  readonly cacheSize: number;
  readonly cacheTimeMs: number;
  readonly timeoutMs: number;
}

/** `[keystone_authtoken]`, checked once at start: the service user's credentials must be there. */
export function keystoneAuthOptions(section: BasaltConfig['keystone_authtoken']): KeystoneAuthOptions {
  for (const key of ['auth_url', 'username', 'password', 'project_name'] as const) {
    if (section[key] === '') {
      throw new ConfigError(`keystone_authtoken.${key} must be set when [api] auth_strategy = keystone`);
    }
  }
  const authUrl = section.auth_url.replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(authUrl)) {
    throw new ConfigError(`keystone_authtoken.auth_url: "${authUrl}" is not an http(s) URL`);
  }
  return {
    authUrl,
    wwwAuthenticateUri: section.www_authenticate_uri || authUrl,
    username: section.username,
    password: section.password,
    projectName: section.project_name,
    userDomainName: section.user_domain_name,
    projectDomainName: section.project_domain_name,
    cacheSize: section.token_cache_size,
    cacheTimeMs: section.token_cache_time * 1000,
    timeoutMs: section.http_connect_timeout * 1000,
  };
}

const REFUSED = 'The request you have made requires authentication.';
const UNAVAILABLE = 'The identity service is temporarily unavailable; retry the request.';

interface KeystoneToken {
  readonly expires_at?: string;
  readonly user?: { readonly id?: string };
  readonly project?: { readonly id?: string };
  readonly roles?: readonly { readonly name?: string }[];
}

/**
 * Tokens validated by a real Keystone the way keystonemiddleware's auth_token does it: the service
 * user's own token in `X-Auth-Token`, the caller's in `X-Subject-Token`, on `GET /v3/auth/tokens`.
 * Answers are remembered in a bounded LRU for `token_cache_time`, never past the token's expiry,
 * under a hash of the token; concurrent checks of one token share one round trip. The service
 * token is obtained on first use and again before it expires or when Keystone refuses it.
 * Neither token nor password ever reaches a log or an error message.
 */
export class KeystoneAuthenticator implements Authenticator {
  private readonly cache: ExpiringLru<Caller>;
  private readonly inFlight = new Map<string, Promise<Caller>>();
  private readonly tokens: KeystoneTokenClient;

  constructor(
    private readonly options: KeystoneAuthOptions,
    private readonly log: Logger,
  ) {
    this.cache = new ExpiringLru(options.cacheSize);
    this.tokens = new KeystoneTokenClient(options);
  }

  challenge(): string {
    return keystoneChallenge(this.options.wwwAuthenticateUri);
  }

  async authenticate(token: string | undefined): Promise<Caller> {
    if (!token) throw new UnauthorizedError(REFUSED);
    const key = createHash('sha256').update(token).digest('base64');
    const cached = this.cache.get(key);
    if (cached) return cached;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.validate(token, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async validate(token: string, key: string): Promise<Caller> {
    let serviceToken = await this.serviceToken();
    let response = await this.check(serviceToken, token);
    if (response.status === 401) {
      // our own token was refused (revoked, keys rotated): get a new one, once
      serviceToken = await this.serviceToken(serviceToken);
      response = await this.check(serviceToken, token);
    }
    if (response.status === 404) throw new UnauthorizedError(REFUSED);
    if (response.status !== 200) {
      this.log.error({ status: response.status }, 'Keystone would not validate a token for the service user');
      throw new ServiceUnavailableError(UNAVAILABLE);
    }
    const body = (await response.json().catch(() => undefined)) as { token?: KeystoneToken } | undefined;
    const answer = body?.token;
    const expiresAt = Date.parse(answer?.expires_at ?? '');
    if (!answer?.user?.id || !Number.isFinite(expiresAt)) {
      this.log.error('Keystone answered a token validation without a user or an expiry');
      throw new ServiceUnavailableError(UNAVAILABLE);
    }
    if (expiresAt <= Date.now()) throw new UnauthorizedError(REFUSED);
    if (!answer.project?.id) throw new ForbiddenError('A token scoped to a project is required.');
    const roles = (answer.roles ?? []).map((r) => r.name).filter((r): r is string => typeof r === 'string');
    const caller: Caller = {
      userId: answer.user.id,
      projectId: answer.project.id,
      roles,
      isAdmin: roles.includes('admin'),
    };
    this.cache.set(key, caller, Math.min(Date.now() + this.options.cacheTimeMs, expiresAt));
    return caller;
  }

  private check(serviceToken: string, token: string): Promise<Response> {
    return this.call(`${this.options.authUrl}/auth/tokens?nocatalog`, {
      headers: { 'X-Auth-Token': serviceToken, 'X-Subject-Token': token },
    });
  }

  private async serviceToken(refused?: string): Promise<string> {
    try {
      return await this.tokens.token(refused);
    } catch (error) {
      if (!(error instanceof KeystoneTokenError)) throw error;
      const o = this.options;
      if (error.status === undefined) {
        this.log.warn({ url: o.authUrl, err: errorMessage(error.cause) }, 'Keystone is unreachable');
      } else {
        this.log.error(
          { status: error.status, username: o.username, project: o.projectName },
          'Keystone refused the service user a token: check [keystone_authtoken]',
        );
      }
      throw new ServiceUnavailableError(UNAVAILABLE, { cause: error });
    }
  }

  private async call(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      this.log.warn(
        { url: this.options.authUrl, err: errorMessage(cause ?? error) },
        'Keystone is unreachable',
      );
      throw new ServiceUnavailableError(UNAVAILABLE, { cause: error });
    }
  }
}
