import { stateTable } from './states';

/** Glance v2's image statuses, as far as a filesystem store has them; `deleted` is final. */
export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'deactivated', 'killed', 'deleted'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

const LIVE = IMAGE_STATUSES.filter((s): s is Exclude<ImageStatus, 'deleted'> => s !== 'deleted');

/**
 * The image's moves. The image API makes them all; `basalt image create` registers an image the
 * way the API's create and upload would.
 */
export const IMAGE_STATES = stateTable('image', IMAGE_STATUSES, {
  /** The data's upload begins: one upload per image. */
  beginUpload: { from: ['queued'], to: 'saving', by: ['api'] },
  /** The data is stored whole, with its size and checksums. */
  finishUpload: { from: ['saving'], to: 'active', by: ['api'] },
  /** An upload that broke off: as Glance v2 does, the image may be uploaded again. */
  failUpload: { from: ['saving'], to: 'queued', by: ['api'] },
  /** An admin's deactivate: the data is no longer served. */
  deactivate: { from: ['active'], to: 'deactivated', by: ['api'] },
  reactivate: { from: ['deactivated'], to: 'active', by: ['api'] },
  remove: { from: LIVE, to: 'deleted', by: ['api'] },
});
