/**
 * The root of every error Basalt raises on purpose.
 *
 * `retryable` tells a caller whether repeating the same operation may succeed (a broker that went
 * away, a busy device) or never will (bad input, a missing volume). `data` carries machine-readable
 * details; it crosses RPC boundaries, so it must be plain JSON and never hold secrets.
 */
export class BasaltError extends Error {
  readonly retryable: boolean;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    options: { retryable?: boolean; data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
    this.data = Object.freeze({ ...(options.data ?? {}) });
  }
}

/** Input that can never be accepted as given; retrying it is pointless. */
export class InvalidInputError extends BasaltError {}

/** A named thing does not exist (or is not visible to the caller). */
export class NotFoundError extends BasaltError {}

/** The thing exists but is in a state that forbids the operation right now. */
export class ConflictError extends BasaltError {}

/** Whether an unknown thrown value says it is worth retrying. */
export function isRetryable(error: unknown): boolean {
  return error instanceof BasaltError && error.retryable;
}

/** A message for any thrown value, for logs and error bodies. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
