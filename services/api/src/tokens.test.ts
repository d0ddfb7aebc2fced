import { type TokenClaims, TokenSigner } from './tokens';

const claims = (exp: number): TokenClaims => ({
  user_id: 'u1',
  user_name: 'alice',
  project_id: 'p1',
  project_name: 'demo',
  roles: ['member', 'reader'],
  iat: exp - 3600,
  exp,
  audit_id: 'a1',
});

describe('TokenSigner', () => {
  const signer = new TokenSigner('the-secret');
  const now = 1_800_000_000_000;
  const token = signer.sign(claims(now / 1000 + 60));

  test('a token it signed verifies until it expires, and not after', () => {
    expect(signer.verify(token, now)?.project_id).toBe('p1');
    expect(signer.verify(token, now + 59_999)).toBeDefined();
    expect(signer.verify(token, now + 60_000)).toBeUndefined();
  });

  test('a changed payload or signature, a token of another key and garbage do not verify', () => {
    const [payload, mac] = token.split('.') as [string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...claims(now / 1000 + 60), roles: ['admin', 'member', 'reader'] }),
    ).toString('base64url');
    expect(signer.verify(`${forged}.${mac}`, now)).toBeUndefined();
    expect(signer.verify(`${payload}.${mac.slice(0, -2)}AA`, now)).toBeUndefined();
    expect(signer.verify(`${payload}.${mac}.extra`, now)).toBeUndefined();
    expect(new TokenSigner('another-secret').verify(token, now)).toBeUndefined();
    for (const garbage of ['', '.', 'abc', `${payload}.`, '.sig', 'a.b']) {
      expect(signer.verify(garbage, now)).toBeUndefined();
    }
    // a validly signed payload that is not JSON
    const notJson = new TokenSigner('the-secret').sign(claims(0)).replace(/^[^.]+/, 'bm90IGpzb24');
    expect(signer.verify(notJson, now)).toBeUndefined();
  });

  test('with no secret configured, each signer has a random key of its own', () => {
    const a = new TokenSigner('');
    expect(a.verify(a.sign(claims(now / 1000 + 60)), now)).toBeDefined();
    expect(new TokenSigner('').verify(a.sign(claims(now / 1000 + 60)), now)).toBeUndefined();
  });
});
