export { type ServiceUser, serviceTokens } from './service-tokens';
export { KeystoneTokenClient, KeystoneTokenError, type PasswordAuth } from './token-client';
