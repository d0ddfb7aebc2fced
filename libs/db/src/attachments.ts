import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ATTACHMENT_STATES, type AttachmentStatus } from './attachment-states';
import { Params, updateReturning } from './sql';
import { VOLUME_STATES } from './volume-states';

export interface AttachmentRecord {
  readonly id: string;
  readonly volumeId: string;
  /** Null for an attachment os-attach recorded: no connection behind it. */
  readonly initiator: string | null;
  readonly ip: string | null;
  readonly connectorHost: string | null;
  readonly instanceUuid: string | null;
  readonly mountpoint: string | null;
  readonly attachStatus: Exclude<AttachmentStatus, 'deleted'>;
  /** When `attach_volume` named the instance. */
  readonly attachedAt: Date | null;
}

const { attach, close, closeRecorded } = ATTACHMENT_STATES.moves;
const volumeMoves = VOLUME_STATES.moves;
/** The volume status in which a connection may take an instance: reserved for it by the compute API. */
const RESERVED = 'attaching';
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

/**
 * One row per live connection of an initiator to a volume (`initialize_connection` makes it,
 * `terminate_connection` ends it); `attach_volume` names the instance it serves.
 */
export class AttachmentRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * Records a connection (connecting the same initiator again keeps its row) and returns the
   * addresses with a live connection to the volume before and after, in one statement: the
   * target's ACL goes from the one to the other.
   */
  async connect(
    volumeId: string,
    connector: { ip: string; initiator: string; host?: string },
  ): Promise<{ previous: string[]; current: string[] }> {
    // every part of the statement sees the rows as they were before the upsert
    const [row] = await this.ds.query(
      `WITH before AS (
         SELECT initiator, ip FROM volume_attachments WHERE volume_id = $2 AND NOT deleted AND ip IS NOT NULL
       ), upsert AS (
         INSERT INTO volume_attachments (id, volume_id, initiator, ip, connector_host, attach_status)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (volume_id, initiator) WHERE NOT deleted
         DO UPDATE SET ip = EXCLUDED.ip, connector_host = EXCLUDED.connector_host, updated_at = now()
         RETURNING ip
       )
       SELECT
         (SELECT coalesce(array_agg(DISTINCT ip ORDER BY ip), '{}') FROM before) AS previous,
         (SELECT coalesce(array_agg(DISTINCT ip ORDER BY ip), '{}')
            FROM (SELECT ip FROM before WHERE initiator IS DISTINCT FROM $3 UNION ALL SELECT ip FROM upsert) a) AS current`,
      [randomUUID(), volumeId, connector.initiator, connector.ip, connector.host ?? null, CONNECTED],
    );
    return { previous: row.previous as string[], current: row.current as string[] };
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
      'SELECT DISTINCT ip FROM volume_attachments WHERE volume_id = $1 AND NOT deleted AND ip IS NOT NULL ORDER BY ip',
      [volumeId],
    );
    return rows.map((r: { ip: string }) => r.ip);
  }

  /**
   * `attach_volume`: the connection `initiator` made (by `connect`) becomes the attachment of
   * `instanceUuid` at `mountpoint` on `host`, and the volume moves `attaching` → `in-use`, in one
   * statement. Again for the same instance it changes nothing and succeeds. False when the volume
   * is not `attaching` (nor `in-use` by that very attachment) or that initiator has no connection.
   */
  async markAttached(
    volumeId: string,
    attachment: { initiator: string; instanceUuid: string; mountpoint: string; host: string | null },
  ): Promise<boolean> {
    const p = new Params();
    const id = p.add(volumeId);
    const instance = p.add(attachment.instanceUuid);
    // a connection not yet attached takes the instance only while the volume is reserved for it;
    // one attached already answers again only for its own instance
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `WITH v AS (SELECT id, status FROM volumes WHERE id = ${id} AND NOT deleted FOR UPDATE),
       a AS (
         UPDATE volume_attachments t
            SET instance_uuid = ${instance}, mountpoint = ${p.add(attachment.mountpoint)},
                connector_host = coalesce(${p.add(attachment.host)}, t.connector_host),
                attach_status = ${p.add(attach.to)}, updated_at = now()
           FROM v
          WHERE t.volume_id = v.id AND t.initiator = ${p.add(attachment.initiator)} AND NOT t.deleted
            AND t.attach_status = ANY(${p.add(attach.from)}) AND v.status = ANY(${p.add(volumeMoves.attach.from)})
            AND (t.instance_uuid = ${instance} OR (t.instance_uuid IS NULL AND v.status = ${p.add(RESERVED)}))
          RETURNING t.id),
       u AS (
         UPDATE volumes SET status = ${p.add(volumeMoves.attach.to)}, attach_status = 'attached', updated_at = now()
          WHERE id = ${id} AND status = ANY(${p.add(volumeMoves.attach.from)}) AND EXISTS (SELECT 1 FROM a))
       SELECT id FROM a`,
      p.values,
    );
    return rows.length > 0;
  }

  /**
   * `detach_volume`, after `terminate_connection`: a volume `detaching` (or `attaching`, an attach
   * rolled back) goes to `available` when none of its connections is attached any more, else back
   * to `in-use`. Returns the status it went to; undefined when it was in neither state.
   */
  async markDetached(volumeId: string): Promise<'available' | 'in-use' | undefined> {
    const p = new Params();
    const id = p.add(volumeId);
    const [row] = await updateReturning(
      this.ds,
      `WITH attached AS (
         SELECT EXISTS (SELECT 1 FROM volume_attachments
                         WHERE volume_id = ${id} AND NOT deleted AND attach_status = ${p.add(attach.to)}) AS any)
       UPDATE volumes
          SET status = CASE WHEN attached.any THEN ${p.add(volumeMoves.detachOne.to)} ELSE ${p.add(volumeMoves.detach.to)} END,
              attach_status = CASE WHEN attached.any THEN 'attached' ELSE 'detached' END,
              updated_at = now()
         FROM attached
        WHERE id = ${id} AND NOT deleted AND status = ANY(${p.add(volumeMoves.detach.from)})
        RETURNING status`,
      p.values,
    );
    return row?.status as 'available' | 'in-use' | undefined;
  }

  /**
   * os-attach: an attachment without a connection, of `instanceUuid` (or of `host` alone) at
   * `mountpoint`, and the volume `in-use`, in one statement. Undefined when the volume is not
   * available or reserved.
   */
  async record(
    volumeId: string,
    attachment: { instanceUuid: string | null; mountpoint: string; host: string | null },
  ): Promise<AttachmentRecord | undefined> {
    const p = new Params();
    const { recordAttach } = volumeMoves;
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `WITH v AS (
         UPDATE volumes SET status = ${p.add(recordAttach.to)}, attach_status = 'attached', updated_at = now()
          WHERE id = ${p.add(volumeId)} AND NOT deleted AND status = ANY(${p.add(recordAttach.from)})
          RETURNING id)
       INSERT INTO volume_attachments (id, volume_id, connector_host, instance_uuid, mountpoint, attach_status)
       SELECT ${p.add(randomUUID())}, v.id, ${p.add(attachment.host)}, ${p.add(attachment.instanceUuid)},
              ${p.add(attachment.mountpoint)}, ${p.add(attach.to)}
         FROM v
       RETURNING *`,
      p.values,
    );
    return rows[0] ? toAttachment(rows[0]) : undefined;
  }

  /**
   * os-detach (`force` false) or os-force_detach: ends the recorded attachment `attachmentId` (or
   * the volume's recorded one when none is named) and moves the volume to `available`, or keeps it
   * `in-use` while another attachment is attached, in one statement. Undefined when the volume is
   * in no state to detach from or has no such recorded attachment.
   */
  async endRecorded(
    volumeId: string,
    attachmentId: string | undefined,
    force: boolean,
  ): Promise<'available' | 'in-use' | undefined> {
    const p = new Params();
    const id = p.add(volumeId);
    const move = force ? volumeMoves.forceDetach : volumeMoves.recordDetach;
    const [inUse, available] = [p.add('in-use'), p.add('available')];
    const [row] = await updateReturning(
      this.ds,
      `WITH v AS (SELECT id FROM volumes WHERE id = ${id} AND NOT deleted AND status = ANY(${p.add(move.from)}) FOR UPDATE),
       a AS (
         UPDATE volume_attachments t
            SET attach_status = ${p.add(closeRecorded.to)}, deleted = true, deleted_at = now(), updated_at = now()
           FROM v
          WHERE t.volume_id = v.id AND NOT t.deleted AND t.initiator IS NULL
            AND t.attach_status = ANY(${p.add(closeRecorded.from)})
            AND t.id = coalesce(${p.add(attachmentId ?? null)}::uuid, t.id)
          RETURNING t.id),
       others AS (
         SELECT EXISTS (SELECT 1 FROM volume_attachments
                         WHERE volume_id = ${id} AND NOT deleted AND attach_status = ${p.add(attach.to)}
                           AND id NOT IN (SELECT id FROM a)) AS any)
       UPDATE volumes
          SET status = CASE WHEN others.any THEN ${inUse} ELSE ${available} END,
              attach_status = CASE WHEN others.any THEN 'attached' ELSE 'detached' END,
              updated_at = now()
         FROM others
        WHERE id = ${id} AND EXISTS (SELECT 1 FROM a)
        RETURNING status`,
      p.values,
    );
    return row?.status as 'available' | 'in-use' | undefined;
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
    initiator: (r.initiator as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    connectorHost: (r.connector_host as string | null) ?? null,
    instanceUuid: (r.instance_uuid as string | null) ?? null,
    mountpoint: (r.mountpoint as string | null) ?? null,
    attachStatus: r.attach_status as AttachmentRecord['attachStatus'],
    attachedAt: r.attach_status === 'attached' ? new Date(String(r.updated_at)) : null,
  };
}
