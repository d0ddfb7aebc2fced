import { KeystoneTokenClient } from './token-client';

/** How long the service user's authentication may take before the caller's request is retried. */
const AUTH_TIMEOUT_MS = 10_000;

/** `[service_user]`: who the workers are when they call the other services' APIs. */
export interface ServiceUser {
  readonly auth_url: string;
  readonly username: string;
  readonly password: string;
  readonly project_name: string;
}

/**
 * The service user's tokens, asked for again (`renew`) when a service refused the last one: with
 * `auth_url` from Keystone (ours or a real one) in the default domain; without, the noauth token
 * `user:project`.
 */
export function serviceTokens(user: ServiceUser): (renew: boolean) => Promise<string> {
  if (!user.auth_url) return async () => `${user.username}:${user.project_name}`;
  const client = new KeystoneTokenClient({
    authUrl: user.auth_url,
    username: user.username,
    password: user.password,
    projectName: user.project_name,
    userDomainName: 'Default',
    projectDomainName: 'Default',
    timeoutMs: AUTH_TIMEOUT_MS,
  });
  let last: string | undefined;
  return async (renew) => {
    last = await client.token(renew ? last : undefined);
    return last;
  };
}
