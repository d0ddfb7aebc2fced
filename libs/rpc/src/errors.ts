import { BasaltError } from '@basalt/errors';

export class RpcError extends BasaltError {}

/** No reply within the call's timeout. Handlers are idempotent, so the call may be repeated. */
export class RpcTimeoutError extends RpcError {
  constructor(message: string) {
    super(message, { retryable: true });
  }
}

/** The broker is unreachable or the connection dropped while the call was in flight. */
export class RpcConnectionError extends RpcError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: true, cause });
  }
}

/** The broker had no queue for the target: no server for that topic/host has ever started. */
export class RpcUndeliverableError extends RpcError {
  constructor(message: string) {
    super(message, { retryable: true });
  }
}

/**
 * A request this server cannot take: not parseable, unknown method, incompatible version,
 * arguments not of the method's declared shape.
 */
export class RpcDispatchError extends RpcError {
  constructor(
    /** oslo.messaging's class name for the same failure, so Python callers see what they expect. */
    readonly osloClass: 'NoSuchMethod' | 'UnsupportedVersion' | 'MalformedMessage' | 'InvalidArguments',
    message: string,
  ) {
    super(message, { retryable: false });
  }
}

/** An error raised by the remote handler, rebuilt on the caller's side. */
export class RemoteError extends RpcError {
  constructor(
    /** The class name the remote handler raised (`VolumeNotFound`, `ValueError`, …). */
    readonly remoteClass: string,
    readonly remoteModule: string,
    message: string,
    data: Record<string, unknown>,
    retryable: boolean,
    readonly remoteTraceback: readonly string[],
  ) {
    super(message, { retryable, data });
  }
}
