import { type ServiceUser, serviceTokens } from '@basalt/keystone';
import { ImageApi } from './image-api';

/** The image API at `url` as a service user (`[service_user]`) reaches it: what the workers use. */
export function serviceImageApi(url: string, user: ServiceUser): ImageApi {
  return new ImageApi({ url, token: serviceTokens(user) });
}
