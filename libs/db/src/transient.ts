import { errorMessage, FAULTS, recognizeFault } from '@basalt/errors';

/** SQLSTATEs that say "the same statement may succeed if sent again" (besides class 08, connection). */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '57P01', // admin_shutdown: the server is restarting
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: still starting
]);
const TRANSIENT_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * Whether a database failure is one a retry can get past: the connection dropped or was refused,
 * the server is restarting, or the transaction lost a race. TypeORM wraps the driver's error as
 * `driverError`, and releases a held connection (a transaction's) that failed; pg reports a
 * dropped connection without a code.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  // a transaction's connection that dropped is released: TypeORM says so under either name
  const name = (error as Error | undefined)?.name;
  if (name === 'QueryRunnerAlreadyReleasedError' || name === 'QueryRunnerProviderAlreadyReleasedError')
    return true;
  const driverError = (error as { driverError?: unknown } | undefined)?.driverError ?? error;
  const code = (driverError as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || TRANSIENT_SQLSTATES.has(code) || TRANSIENT_SOCKET_CODES.has(code))
      return true;
  }
  return /Connection terminated|Connection ended unexpectedly|timeout exceeded when trying to connect/i.test(
    errorMessage(driverError),
  );
}

// a database that is away for a moment is a 503 at the API, not a server fault
recognizeFault(isTransientDatabaseError, {
  ...FAULTS.serviceUnavailable,
  publicMessage: 'The volume database is temporarily unavailable; retry the request.',
});
