export { KeystoneTokenClient, KeystoneTokenError, type PasswordAuth } from './token-client';
