import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { openProviderAuth, resealProviderAuth } from '../provider-auth';
import type { SecretBox } from '../secret-box';

/** The secret box a data source was opened with (`createDataSource({ secretBox })`), for this migration. */
export const migrationSecretBoxes = new WeakMap<DataSource, SecretBox>();

/**
 * CHAP secrets stored before they were sealed are sealed now, with `[volume] secret_keys`: from
 * here on `provider_auth` never holds a password in clear. A database holding none needs no key.
 */
export class SealProviderAuth1764000000050 implements MigrationInterface {
  name = 'SealProviderAuth1764000000050';

  async up(q: QueryRunner): Promise<void> {
    const [{ count }] = await q.query(
      "SELECT count(*)::int AS count FROM volumes WHERE provider_auth IS NOT NULL AND provider_auth NOT LIKE 'enc:v1:%'",
    );
    if (count === 0) return;
    const box = migrationSecretBoxes.get(q.connection);
    if (!box) {
      throw new Error(
        `${count} volume(s) hold CHAP secrets in clear: set [volume] secret_keys and run basalt db migrate again`,
      );
    }
    await resealProviderAuth(q.manager, box);
  }

  async down(q: QueryRunner): Promise<void> {
    const rows: { id: string; provider_auth: string }[] = await q.query(
      'SELECT id, provider_auth FROM volumes WHERE provider_auth IS NOT NULL',
    );
    if (rows.length === 0) return;
    const box = migrationSecretBoxes.get(q.connection);
    if (!box) throw new Error('unsealing the CHAP secrets needs [volume] secret_keys');
    for (const row of rows) {
      await q.query('UPDATE volumes SET provider_auth = $1 WHERE id = $2', [
        openProviderAuth(box, row.id, row.provider_auth),
        row.id,
      ]);
    }
  }
}
