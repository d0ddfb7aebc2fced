import { BasaltError } from '@basalt/errors';

/** The identity API would not give the service user a token; a later attempt asks again. */
export class ServiceUserError extends BasaltError {}

/**
 * The service user's token (`[service_user]`), which the workers present to the other services'
 * APIs: with `auth_url` a Keystone v3 password authentication (ours or a real Keystone), kept
 * until renewed; without, the noauth token `user:project`.
 */
export function serviceToken(user: {
  readonly auth_url: string;
  readonly username: string;
  readonly password: string;
  readonly project_name: string;
}): (renew: boolean) => Promise<string> {
  if (!user.auth_url) return async () => `${user.username}:${user.project_name}`;
  let token: Promise<string> | undefined;
  return (renew) => {
    if (!token || renew) {
      const pending = (async () => {
        const response = await fetch(`${user.auth_url.replace(/\/+$/, '')}/auth/tokens`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            auth: {
              identity: {
                methods: ['password'],
                password: {
                  user: { name: user.username, password: user.password, domain: { id: 'default' } },
                },
              },
              scope: { project: { name: user.project_name, domain: { id: 'default' } } },
            },
          }),
        });
        const subject = response.headers.get('x-subject-token');
        if (response.status !== 201 || !subject) {
          throw new ServiceUserError(
            `The identity API refused the service user ${user.username} (${response.status})`,
          );
        }
        return subject;
      })();
      // a refused or failed authentication is asked again next time
      pending.catch(() => {
        if (token === pending) token = undefined;
      });
      token = pending;
    }
    return token;
  };
}
