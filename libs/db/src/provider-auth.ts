import { SecretBox, SecretBoxError } from './secret-box';
import { type Db, updateReturning } from './sql';

/** `provider_auth` (CHAP user and password) as the worker stores it: sealed for its row. */
export const sealProviderAuth = (box: SecretBox, volumeId: string, providerAuth: string) =>
  box.seal(providerAuth, `volumes.provider_auth:${volumeId}`);

export const openProviderAuth = (box: SecretBox, volumeId: string, stored: string) =>
  SecretBox.isSealed(stored) ? box.open(stored, `volumes.provider_auth:${volumeId}`) : stored;

export interface ChapCredentials {
  readonly user: string;
  readonly password: string;
}

/** `provider_auth` in clear: `CHAP <user> <password>`. */
export const chapProviderAuth = (chap: ChapCredentials) => `CHAP ${chap.user} ${chap.password}`;

/** The CHAP user and password a volume's `provider_auth` holds (`CHAP <user> <password>`), opened. */
export function chapCredentials(
  box: SecretBox,
  volume: { readonly id: string; readonly providerAuth: string | null },
): ChapCredentials | undefined {
  if (volume.providerAuth === null) return undefined;
  const [method, user, password] = openProviderAuth(box, volume.id, volume.providerAuth).split(' ');
  return method === 'CHAP' && user && password ? { user, password } : undefined;
}

/**
 * Seals every stored CHAP secret that is in clear or under an older key with the current key
 * (of one host's volumes, or all): each row a compare-and-swap on the value read, so a secret
 * written meanwhile is left as it is. Returns how many rows were resealed. A row that does not open
 * (sealed under a key no longer configured, or altered) is handed to `unopenable`, when that is
 * given: the credentials it recovers from elsewhere are sealed in its place, else it is left as it
 * is. Without `unopenable` such a row stops the whole run.
 */
export async function resealProviderAuth(
  db: Db,
  box: SecretBox,
  host?: string,
  unopenable?: (volumeId: string, error: SecretBoxError) => Promise<ChapCredentials | undefined>,
): Promise<number> {
  const rows: { id: string; provider_auth: string }[] = await db.query(
    `SELECT id, provider_auth FROM volumes
      WHERE provider_auth IS NOT NULL AND provider_auth NOT LIKE $1 ${host === undefined ? '' : 'AND host = $2'}`,
    [`enc:v1:${box.currentKeyId}:%`, ...(host === undefined ? [] : [host])],
  );
  let resealed = 0;
  for (const row of rows) {
    let opened: string;
    try {
      opened = openProviderAuth(box, row.id, row.provider_auth);
    } catch (error) {
      if (!unopenable || !(error instanceof SecretBoxError)) throw error;
      const recovered = await unopenable(row.id, error);
      if (!recovered) continue;
      opened = chapProviderAuth(recovered);
    }
    const sealed = sealProviderAuth(box, row.id, opened);
    const updated = await updateReturning(
      db,
      'UPDATE volumes SET provider_auth = $1 WHERE id = $2 AND provider_auth = $3 RETURNING id',
      [sealed, row.id, row.provider_auth],
    );
    resealed += updated.length;
  }
  return resealed;
}
