import { BasaltError, FAULTS, type FaultKind } from '@basalt/errors';

const RPC_UNAVAILABLE: FaultKind = {
  ...FAULTS.serviceUnavailable,
  publicMessage: 'The volume service is temporarily unavailable; retry the request.',
};

/** A failure of the messaging itself: a 503 when a retry can help, else a server fault. */
export class RpcError extends BasaltError {
  override get fault(): FaultKind {
    return this.retryable ? RPC_UNAVAILABLE : FAULTS.computeFault;
  }
}

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

/** An error raised by the remote handler whose class this process does not know (see `registerErrorClasses`). */
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

/**
 * Whether a cast failed for want of the broker (the connection is down, or the broker did not take
 * the message in time) rather than for want of a server. The sender's state change is already in
 * the database, where the receiver's periodic sweep finds it once the broker is back.
 */
export function isBrokerOutage(error: unknown): boolean {
  return error instanceof RpcConnectionError || error instanceof RpcTimeoutError;
}
