import { ImageApi, ImageApiError } from './image-api';

/**
 * The service user's token: with `auth_url` a Keystone v3 password authentication (ours or a real
 * Keystone), kept until renewed; without, the noauth token `user:project`.
 */
export function serviceToken(user: {
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
}): (renew: boolean) => Promise<string> {
  if (!user.authUrl) return async () => `${user.username}:${user.projectName}`;
  let token: Promise<string> | undefined;
  return (renew) => {
    if (!token || renew) {
      const pending = (async () => {
        const response = await fetch(`${user.authUrl.replace(/\/+$/, '')}/auth/tokens`, {
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
              scope: { project: { name: user.projectName, domain: { id: 'default' } } },
            },
          }),
        });
        const subject = response.headers.get('x-subject-token');
        if (response.status !== 201 || !subject) {
          throw new ImageApiError(
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

/** The image API at `url` as a service user (`[service_user]`) reaches it: what the workers use. */
export function serviceImageApi(
  url: string,
  user: { auth_url: string; username: string; password: string; project_name: string },
): ImageApi {
  return new ImageApi({
    url,
    token: serviceToken({
      authUrl: user.auth_url,
      username: user.username,
      password: user.password,
      projectName: user.project_name,
    }),
  });
}
