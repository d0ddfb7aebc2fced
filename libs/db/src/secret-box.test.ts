import { randomBytes } from 'node:crypto';
import { SecretBox, SecretBoxError } from './secret-box';

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

describe('SecretBox', () => {
  const k1 = key('k1');
  const k2 = key('k2');
  const box = new SecretBox([k1]);

  test('a sealed value opens to the original, names its key and hides the text', () => {
    const sealed = box.seal('CHAP alice s3cretPassw0rd', 'row-1');
    expect(sealed).toMatch(/^enc:v1:k1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('s3cret');
    expect(box.open(sealed, 'row-1')).toBe('CHAP alice s3cretPassw0rd');
    // a fresh IV each time
    expect(box.seal('CHAP alice s3cretPassw0rd', 'row-1')).not.toBe(sealed);
    expect(SecretBox.isSealed(sealed)).toBe(true);
    expect(SecretBox.isSealed('CHAP alice s3cret')).toBe(false);
  });

  test("an altered value, another row's, a shortened tag and garbage do not open", () => {
    const sealed = box.seal('CHAP alice s3cretPassw0rd', 'row-1');
    const parts = sealed.split(':');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const altered = [...parts.slice(0, 5), flip(parts[5] as string)].join(':');
    expect(() => box.open(altered, 'row-1')).toThrow(SecretBoxError);
    expect(() => box.open(sealed, 'row-2')).toThrow(/altered, or another row's/);
    const shortTag = [...parts.slice(0, 4), (parts[4] as string).slice(0, 6), parts[5]].join(':');
    expect(() => box.open(shortTag, 'row-1')).toThrow(SecretBoxError);
    expect(() => box.open('enc:v1:k1:x', 'row-1')).toThrow(/not sealed/);
    expect(() => box.open('CHAP alice s3cret', 'row-1')).toThrow(/not sealed/);
  });

  test('keys rotate: the first seals, every listed one opens, an unlisted one is named', () => {
    const old = box.seal('CHAP a b', 'row');
    const rotated = new SecretBox([k2, k1]);
    expect(rotated.currentKeyId).toBe('k2');
    expect(rotated.open(old, 'row')).toBe('CHAP a b');
    expect(rotated.isCurrent(old)).toBe(false);
    const fresh = rotated.seal('CHAP a b', 'row');
    expect(rotated.isCurrent(fresh)).toBe(true);
    expect(() => box.open(fresh, 'row')).toThrow(
      'stored secret is sealed with key "k2", which is not configured',
    );
  });

  test('bad keys are refused with messages that never show a key', () => {
    const material = randomBytes(16).toString('base64');
    const attempts = [[], [`k1:${material}`], [material], ['bad id!:x'], [k1, k1]];
    for (const keys of attempts) {
      let message = '';
      try {
        new SecretBox(keys);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(material);
      expect(message).not.toContain(k1.split(':')[1] as string);
    }
  });
});
