import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { BasaltError } from '@basalt/errors';

/** A sealed value that cannot be opened: unknown key, tampered text, or sealed for another row. */
export class SecretBoxError extends BasaltError {}

const FORMAT = 'enc:v1';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Secrets kept in the database sealed with AES-256-GCM: `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`
 * (base64url). The key id travels with the value, so keys rotate: the first key seals, every key
 * listed opens. The row's id is the additional data, so a sealed value moved to another row does
 * not open. Messages name key ids, never keys or values.
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  readonly currentKeyId: string;

  /** `keys`: `id:base64` of 32 random bytes each, the current one first. */
  constructor(keys: readonly string[]) {
    for (const [index, entry] of keys.entries()) {
      const colon = entry.indexOf(':');
      const id = colon > 0 ? entry.slice(0, colon) : '';
      if (!KEY_ID.test(id))
        throw new SecretBoxError(`secret key #${index + 1} must be id:base64 (id of [A-Za-z0-9_-])`);
      const key = Buffer.from(entry.slice(colon + 1), 'base64');
      if (key.length !== 32) throw new SecretBoxError(`secret key "${id}" must be 32 bytes, base64-encoded`);
      if (this.keys.has(id)) throw new SecretBoxError(`secret key "${id}" is listed twice`);
      this.keys.set(id, key);
    }
    const first = this.keys.keys().next();
    if (first.done) throw new SecretBoxError('no secret key configured');
    this.currentKeyId = first.value;
  }

  static isSealed(value: string): boolean {
    return value.startsWith(`${FORMAT}:`);
  }

  seal(plain: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId) as Buffer, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const text = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), text].map((b) => b.toString('base64url'));
    return `${FORMAT}:${this.currentKeyId}:${parts.join(':')}`;
  }

  open(sealed: string, aad: string): string {
    const [format, version, id, iv, tag, text, ...rest] = sealed.split(':');
    if (`${format}:${version}` !== FORMAT || !id || !iv || !tag || text === undefined || rest.length > 0) {
      throw new SecretBoxError('stored secret is not sealed');
    }
    const key = this.keys.get(id);
    if (!key) throw new SecretBoxError(`stored secret is sealed with key "${id}", which is not configured`);
    try {
      // a fixed tag length: a shortened tag would be easier to forge
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
        authTagLength: 16,
      });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(text, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SecretBoxError(`stored secret does not open with key "${id}" (altered, or another row's)`);
    }
  }

  /** Sealed with the current key (else it is plaintext or under an older key, due for resealing). */
  isCurrent(value: string): boolean {
    return value.startsWith(`${FORMAT}:${this.currentKeyId}:`);
  }
}
