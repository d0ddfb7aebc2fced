import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ATTACHMENT_STATES, type AttachmentStatus } from './attachment-states';
import { Params, updateReturning } from './sql';

export interface AttachmentRecord {
  readonly id: string;
  readonly volumeId: string;
  readonly initiator: string;
  readonly ip: string;
  readonly connectorHost: string | null;
  readonly instanceUuid: string | null;
  readonly mountpoint: string | null;
  readonly attachStatus: Exclude<AttachmentStatus, 'deleted'>;
}

const { attach, close } = ATTACHMENT_STATES.moves;
/** The status a connection starts in. */
const CONNECTED: AttachmentStatus = 'connected';

/**
 * The statement that closes the live connections `condition` picks: `terminate_connection` closes
 * one, and a volume's delete all of the volume's in the statement that marks it deleted.
 */
export function closeAttachments(condition: string, p: Params): string {
  return `UPDATE volume_attachments SET attach_status = ${p.add(close.to)}, deleted = true, deleted_at = now(), updated_at = now()
           WHERE ${condition} AND NOT deleted AND attach_status = ANY(${p.add(close.from)})`;
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
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (volume_id, initiator) WHERE NOT deleted
       DO UPDATE SET ip = EXCLUDED.ip, connector_host = EXCLUDED.connector_host, updated_at = now()`,
      [randomUUID(), volumeId, connector.initiator, connector.ip, connector.host ?? null, CONNECTED],
    );
    const rows = await this.ds.query(
      'SELECT * FROM volume_attachments WHERE volume_id = $1 AND initiator = $2 AND NOT deleted',
      [volumeId, connector.initiator],
    );
    return toAttachment(rows[0]);
  }

  /** Ends a connection; returns the addresses that still have a live connection to the volume. */
  async disconnect(volumeId: string, initiator: string): Promise<string[]> {
    const p = new Params();
    await this.ds.query(
      closeAttachments(`volume_id = ${p.add(volumeId)} AND initiator = ${p.add(initiator)}`, p),
      p.values,
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
    const p = new Params();
    await updateReturning(
      this.ds,
      `UPDATE volume_attachments SET instance_uuid = ${p.add(instanceUuid)}, mountpoint = ${p.add(mountpoint)},
                                     attach_status = ${p.add(attach.to)}, updated_at = now()
        WHERE volume_id = ${p.add(volumeId)} AND NOT deleted AND attach_status = ANY(${p.add(attach.from)}) RETURNING id`,
      p.values,
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
    attachStatus: r.attach_status as AttachmentRecord['attachStatus'],
  };
}
