import type { BasaltConfig } from '@basalt/config';
import { KeystoneTokenClient } from '@basalt/keystone';

/** How long the service user's authentication may take before the image download is retried. */
const AUTH_TIMEOUT_MS = 10_000;

/**
 * The service user's tokens for the image API: with `auth_url` from Keystone (ours or a real one)
 * in the default domain; without, the noauth token `user:project`.
 */
export function serviceTokens(user: BasaltConfig['service_user']): (refused?: string) => Promise<string> {
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
  return (refused) => client.token(refused);
}
