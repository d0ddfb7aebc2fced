/**
 * What an error is at the HTTP API: the status and the key of the fault body, as Cinder and Nova
 * name them (`{"itemNotFound": {"code": 404, "message": …}}`).
 */
export interface FaultKind {
  readonly status: number;
  readonly name: string;
  /** Said instead of the error's own message, which may name hosts, queues or statements. */
  readonly publicMessage?: string;
  /** Seconds to wait before asking again, sent as `Retry-After` and as the body's `retryAfter`. */
  readonly retryAfter?: string;
}

export const FAULTS = {
  badRequest: { status: 400, name: 'badRequest' },
  unauthorized: { status: 401, name: 'unauthorized' },
  forbidden: { status: 403, name: 'forbidden' },
  itemNotFound: { status: 404, name: 'itemNotFound' },
  notAcceptable: { status: 406, name: 'notAcceptable' },
  conflictingRequest: { status: 409, name: 'conflictingRequest' },
  overLimit: { status: 413, name: 'overLimit' },
  // Cinder's QuotaError carries `Retry-After: 0`, which its fault repeats in the body
  quotaExceeded: { status: 413, name: 'overLimit', retryAfter: '0' },
  badMediaType: { status: 415, name: 'badMediaType' },
  // Cinder's and Nova's name for a 429 too
  tooManyRequests: { status: 429, name: 'overLimit' },
  computeFault: {
    status: 500,
    name: 'computeFault',
    publicMessage: 'The server has either erred or is incapable of performing the requested operation.',
  },
  serviceUnavailable: { status: 503, name: 'serviceUnavailable' },
} as const satisfies Record<string, FaultKind>;

export interface BasaltErrorOptions {
  readonly retryable?: boolean;
  readonly data?: Record<string, unknown>;
  readonly cause?: unknown;
}

/**
 * The root of every error Basalt raises on purpose.
 *
 * `retryable` tells a caller whether repeating the same operation may succeed (a broker that went
 * away, a busy device) or never will (bad input, a missing volume). `data` carries machine-readable
 * details; it crosses RPC boundaries, so it must be plain JSON and never hold secrets. `fault` is
 * what the error is at the HTTP API (Cinder's exception `code`): a server fault unless the class
 * says otherwise.
 */
export class BasaltError extends Error {
  readonly retryable: boolean;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(message: string, options: BasaltErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
    this.data = Object.freeze({ ...(options.data ?? {}) });
  }

  /** What errors of the class are at the HTTP API. */
  static readonly fault: FaultKind = FAULTS.computeFault;

  get fault(): FaultKind {
    return (this.constructor as typeof BasaltError).fault;
  }
}

/** Input that can never be accepted as given; retrying it is pointless. */
export class InvalidInputError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.badRequest;
}

/** The thing exists but its state forbids the operation now (Cinder's `InvalidVolume`: a 400). */
export class InvalidStateError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.badRequest;
}

/** A named thing does not exist (or is not visible to the caller). */
export class NotFoundError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.itemNotFound;
}

/** The request conflicts with the thing's current state or with another request on it (a 409). */
export class ConflictError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.conflictingRequest;
}

/** A limit on what may be asked for was reached. */
export class OverLimitError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.overLimit;
}

/** The client asked too often; the same request may succeed after its wait. */
export class TooManyRequestsError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.tooManyRequests;
}

/** The project's quota does not allow the request (Cinder's `QuotaError`). */
export class QuotaExceededError extends OverLimitError {
  static override readonly fault: FaultKind = FAULTS.quotaExceeded;
}

/** Something the operation needs is away for now; the same request may succeed later. */
export class ServiceUnavailableError extends BasaltError {
  constructor(message: string, options: BasaltErrorOptions = {}) {
    super(message, { retryable: true, ...options });
  }

  static override readonly fault: FaultKind = FAULTS.serviceUnavailable;
}

/** The caller did not prove who it is. */
export class UnauthorizedError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.unauthorized;
}

/** The caller is known but may not do this. */
export class ForbiddenError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.forbidden;
}

/** The body is not of the media type the resource takes. */
export class UnsupportedMediaTypeError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.badMediaType;
}

/** An API microversion this server does not serve. */
export class VersionNotAcceptableError extends BasaltError {
  static override readonly fault: FaultKind = FAULTS.notAcceptable;
}

/** A class whose errors can be rebuilt from a message and options: what crosses RPC as itself. */
export type ErrorClass = new (message: string, options?: BasaltErrorOptions) => BasaltError;

const errorClasses = new Map<string, ErrorClass>();

/**
 * Lets errors of these classes, raised in another process, reach the caller as the same class
 * (rebuilt from oslo's failure document by class name) instead of a generic remote error.
 */
export function registerErrorClasses(...classes: readonly ErrorClass[]): void {
  for (const errorClass of classes) errorClasses.set(errorClass.name, errorClass);
}

export function errorClassNamed(name: string): ErrorClass | undefined {
  return errorClasses.get(name);
}

registerErrorClasses(
  BasaltError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  ConflictError,
  OverLimitError,
  QuotaExceededError,
  ServiceUnavailableError,
  UnauthorizedError,
  ForbiddenError,
  VersionNotAcceptableError,
);

const recognizers: Array<{ readonly test: (error: unknown) => boolean; readonly kind: FaultKind }> = [];

/**
 * Gives a fault kind to errors Basalt does not make itself (a database driver's), which `test`
 * recognizes; the package that knows them says so, so the HTTP layer need not know it.
 */
export function recognizeFault(test: (error: unknown) => boolean, kind: FaultKind): void {
  recognizers.push({ test, kind });
}

/** What a thrown value is at the HTTP API; undefined for an error nobody gave a kind. */
export function faultKindOf(error: unknown): FaultKind | undefined {
  if (error instanceof BasaltError) return error.fault;
  return recognizers.find((r) => r.test(error))?.kind;
}

/** Whether an unknown thrown value says it is worth retrying. */
export function isRetryable(error: unknown): boolean {
  return error instanceof BasaltError && error.retryable;
}

/** A message for any thrown value, for logs and error bodies. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
