import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { updateReturning } from './volumes';

export interface AttachmentRecord {
  readonly id: string;
  readonly volumeId: string;
  readonly initiator: string;
  readonly ip: string;
  readonly connectorHost: string | null;
  readonly instanceUuid: string | null;
  readonly mountpoint: string | null;
  readonly attachStatus: 'connected' | 'attached';
}

/** One row per live connection of an initiator to a volume; `attach_volume` names its instance. */
export class AttachmentRepository {
  constructor(private readonly ds: DataSource) {}

  /** Records a connection; connecting the same initiator again returns the same row. */
  async connect(
    volumeId: string,
    connector: { ip: string; initiator: string; host?: string },
  ): Promise<AttachmentRecord> {
    await this.ds.query(
      `INSERT INTO volume_attachments (id, volume_id, initiator, ip, connector_host, attach_status)
       VALUES ($1, $2, $3, $4, $5, 'connected')
       ON CONFLICT (volume_id, initiator) WHERE NOT deleted
       DO UPDATE SET ip = EXCLUDED.ip, connector_host = EXCLUDED.connector_host, updated_at = now()`,
      [randomUUID(), volumeId, connector.initiator, connector.ip, connector.host ?? null],
    );
    const rows = await this.ds.query(
      'SELECT * FROM volume_attachments WHERE volume_id = $1 AND initiator = $2 AND NOT deleted',
      [volumeId, connector.initiator],
    );
    return toAttachment(rows[0]);
  }

  /** Ends a connection; returns the addresses that still have a live connection to the volume. */
  async disconnect(volumeId: string, initiator: string): Promise<string[]> {
    await this.ds.query(
      `UPDATE volume_attachments SET deleted = true, deleted_at = now(), updated_at = now()
        WHERE volume_id = $1 AND initiator = $2 AND NOT deleted`,
      [volumeId, initiator],
    );
    return this.liveAddresses(volumeId);
  }

  async liveAddresses(volumeId: string): Promise<string[]> {
    const rows = await this.ds.query(
      'SELECT DISTINCT ip FROM volume_attachments WHERE volume_id = $1 AND NOT deleted ORDER BY ip',
      [volumeId],
    );
    return rows.map((r: { ip: string }) => r.ip);
  }

  async markAttached(volumeId: string, instanceUuid: string, mountpoint: string): Promise<void> {
    await updateReturning(
      this.ds,
      `UPDATE volume_attachments SET instance_uuid = $2, mountpoint = $3, attach_status = 'attached', updated_at = now()
        WHERE volume_id = $1 AND NOT deleted RETURNING id`,
      [volumeId, instanceUuid, mountpoint],
    );
  }

  async live(volumeId: string): Promise<AttachmentRecord[]> {
    const rows = await this.ds.query(
      'SELECT * FROM volume_attachments WHERE volume_id = $1 AND NOT deleted ORDER BY created_at',
      [volumeId],
    );
    return rows.map(toAttachment);
  }
}

function toAttachment(r: Record<string, unknown>): AttachmentRecord {
  return {
    id: String(r.id),
    volumeId: String(r.volume_id),
    initiator: String(r.initiator),
    ip: String(r.ip),
    connectorHost: (r.connector_host as string | null) ?? null,
    instanceUuid: (r.instance_uuid as string | null) ?? null,
    mountpoint: (r.mountpoint as string | null) ?? null,
    attachStatus: r.attach_status as 'connected' | 'attached',
  };
}
