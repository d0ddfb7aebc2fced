import { ConfigError, loadConfig, schema } from '@basalt/config';
import { keystoneAuthOptions } from './keystone-authenticator';

const section = (values: Record<string, string>) =>
  loadConfig(schema, { overrides: { keystone_authtoken: values } }).keystone_authtoken;

describe('keystoneAuthOptions', () => {
  const complete = { auth_url: 'http://127.0.0.1:5000/v3/', username: 'basalt', password: 's3cret' };

  test('the service credentials are required, and named when missing', () => {
    for (const key of ['auth_url', 'username', 'password'] as const) {
      const given = { ...complete, [key]: '' };
      expect(() => keystoneAuthOptions(section(given))).toThrow(ConfigError);
      expect(() => keystoneAuthOptions(section(given))).toThrow(`keystone_authtoken.${key}`);
    }
    expect(() => keystoneAuthOptions(section({ ...complete, auth_url: 'keystone:5000' }))).toThrow(
      /not an http\(s\) URL/,
    );
  });

  test("defaults: keystonemiddleware's cache time, the challenge points at auth_url", () => {
    expect(keystoneAuthOptions(section(complete))).toMatchObject({
      authUrl: 'http://127.0.0.1:5000/v3',
      wwwAuthenticateUri: 'http://127.0.0.1:5000/v3',
      projectName: 'service',
      userDomainName: 'Default',
      projectDomainName: 'Default',
      cacheTimeMs: 300_000,
      cacheSize: 10_000,
      timeoutMs: 5_000,
    });
    expect(
      keystoneAuthOptions(section({ ...complete, www_authenticate_uri: 'https://id.example/v3' }))
        .wwwAuthenticateUri,
    ).toBe('https://id.example/v3');
  });
});
