import { InvalidInputError } from '@basalt/errors';
import { faultFor } from './faults';
import { TokenSigner } from './tokens';
import { optionalText, positiveInt } from './validate';
import { negotiateVersion } from './versions';

describe('request validation', () => {
  test.each([1, '1', ' 42 ', 2 ** 31 - 1])('size %j is accepted', (v) =>
    expect(positiveInt('size', v)).toBeGreaterThan(0),
  );
  test.each([0, -1, 1.5, 'ten', '1e3', true, null, [], {}, 2 ** 31])('size %j is refused', (v) => {
    expect(() => positiveInt('size', v)).toThrow(InvalidInputError);
  });
  test('text fields: strings up to 255, null allowed, control characters refused', () => {
    expect(optionalText('name', '$(reboot); `id` | x')).toBe('$(reboot); `id` | x');
    expect(optionalText('name', null)).toBeNull();
    expect(optionalText('name', undefined)).toBeUndefined();
    expect(() => optionalText('name', 'a'.repeat(256))).toThrow(InvalidInputError);
    expect(() => optionalText('name', 'a\u0000b')).toThrow(InvalidInputError);
    expect(() => optionalText('name', 5)).toThrow(InvalidInputError);
  });
});

describe('microversions', () => {
  test.each([
    [undefined, '3.0'],
    ['volume 3.27', '3.27'],
    ['volume latest', '3.60'],
    ['compute 2.1, volume 3.5', '3.5'],
  ])('%j → %s', (header, version) => expect(negotiateVersion(header)).toBe(version));
  test('out of range is a 406', () => {
    expect(faultFor(catchError(() => negotiateVersion('volume 3.61'))).status).toBe(406);
    expect(faultFor(catchError(() => negotiateVersion('volume 2.0'))).status).toBe(406);
  });
});

describe('tokens', () => {
  const claims = (exp: number) => ({
    user_id: 'u',
    user_name: 'alice',
    project_id: 'p',
    project_name: 'demo',
    roles: ['member'],
    iat: 0,
    exp,
    audit_id: 'a',
  });
  test('a signed token verifies until it expires; tampering or another key fails', () => {
    const signer = new TokenSigner('k1');
    const future = Math.floor(Date.now() / 1000) + 60;
    const token = signer.sign(claims(future));
    expect(signer.verify(token)?.project_id).toBe('p');
    expect(signer.verify(signer.sign(claims(1)))).toBeUndefined();
    expect(new TokenSigner('k2').verify(token)).toBeUndefined();
    const [payload, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims(future), roles: ['admin'] })).toString('base64url');
    expect(signer.verify(`${forged}.${mac}`)).toBeUndefined();
    expect(signer.verify(`${payload}`)).toBeUndefined();
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
