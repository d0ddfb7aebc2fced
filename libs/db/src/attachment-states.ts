import { stateTable } from './states';

/** Every status of a connection of an initiator to a volume (or of an attachment recorded without one); `deleted` is final (the row stays, `deleted` set too). */
export const ATTACHMENT_STATUSES = ['connected', 'attached', 'deleted'] as const;
export type AttachmentStatus = (typeof ATTACHMENT_STATUSES)[number];

/** The moves of a `volume_attachments` row, each a compare-and-swap on `attach_status`. */
export const ATTACHMENT_STATES = stateTable('attachment', ATTACHMENT_STATUSES, {
  /** `attach_volume` names the instance and the device. */
  attach: { from: ['connected', 'attached'], to: 'attached', by: ['volume-worker'] },
  /** `terminate_connection`, or the volume's delete, ends the connection. */
  close: { from: ['connected', 'attached'], to: 'deleted', by: ['volume-worker'] },
  /** os-detach or os-force_detach ends an attachment os-attach recorded. */
  closeRecorded: { from: ['attached'], to: 'deleted', by: ['api'] },
});
