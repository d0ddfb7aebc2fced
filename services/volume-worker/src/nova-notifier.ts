import type { RequestContext } from '@basalt/context';
import { BasaltError } from '@basalt/errors';
import { SpanKind, traceparentOf, withSpan } from '@basalt/trace';

export interface NovaNotifierOptions {
  /** `[nova] compute_url`: the compute API's base URL (…/v2.1). */
  readonly url: string;
  /** The service user's token, asked for again when it is refused. */
  readonly token: (renew: boolean) => Promise<string>;
}

/** The compute microversion that knows `volume-extended` (Cinder's nova.py asks for it too). */
const VOLUME_EXTENDED_VERSION = '2.51';

/** The compute API did not take the events (down, refused, or no such server). */
export class NovaNotifyError extends BasaltError {}

/**
 * Cinder's nova client, in small: tells the compute API that volumes changed under servers
 * (os-server-external-events), so their hosts act on it: `volume-extended` has the guest's disk
 * resized. The request carries the request id of the extend, which the instance action keeps,
 * and asks for 2.51, the microversion that has the event (as Cinder's nova client does).
 */
export class NovaNotifier {
  constructor(private readonly options: NovaNotifierOptions) {}

  async volumeExtended(ctx: RequestContext, volumeId: string, serverIds: readonly string[]): Promise<void> {
    if (serverIds.length === 0) return;
    const events = serverIds.map((server) => ({
      name: 'volume-extended',
      server_uuid: server,
      tag: volumeId,
    }));
    const options = { kind: SpanKind.CLIENT, attributes: { 'basalt.volume.id': volumeId } };
    await withSpan('POST os-server-external-events', options, async (span) => {
      const traceparent = traceparentOf(span);
      let response = await this.post(ctx, events, false, traceparent);
      if (response.status === 401) response = await this.post(ctx, events, true, traceparent);
      if (response.status !== 200 && response.status !== 207) {
        throw new NovaNotifyError(
          `The compute API answered ${response.status} to os-server-external-events: ${(await response.text()).slice(0, 200)}`,
          { retryable: response.status >= 500 },
        );
      }
    });
  }

  private async post(
    ctx: RequestContext,
    events: readonly object[],
    renew: boolean,
    traceparent: string | undefined,
  ): Promise<Response> {
    const token = await this.options.token(renew);
    return fetch(`${this.options.url.replace(/\/+$/, '')}/os-server-external-events`, {
      method: 'POST',
      headers: {
        'X-Auth-Token': token,
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'OpenStack-API-Version': `compute ${VOLUME_EXTENDED_VERSION}`,
        'X-OpenStack-Nova-API-Version': VOLUME_EXTENDED_VERSION,
        'X-OpenStack-Request-ID': ctx.requestId,
        ...(traceparent === undefined ? {} : { traceparent }),
      },
      body: JSON.stringify({ events }),
    }).catch((error: unknown) => {
      throw new NovaNotifyError(
        `The compute API at ${this.options.url} cannot be reached: ${String(error)}`,
        {
          retryable: true,
          cause: error,
        },
      );
    });
  }
}
