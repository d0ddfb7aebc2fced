import type { RequestContext } from '@basalt/context';
import { parseTraceparent } from '@basalt/context';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Fields that may hold secrets, wherever they appear in a log object. */
const REDACT = [
  'password',
  'auth_password',
  'provider_auth',
  'token',
  'secret',
  '*.password',
  '*.auth_password',
  '*.provider_auth',
  '*.token',
  '*.secret',
  '*.*.auth_password',
  'headers["x-auth-token"]',
  'headers.authorization',
];

export interface LoggerOptions {
  /** The process name (`basalt-volume`, …), present in every line. */
  readonly name: string;
  readonly host?: string;
  readonly level?: string;
  /** Where lines go; stdout when omitted. */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { pid: process.pid, host: options.host },
      redact: { paths: REDACT, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

/** A child logger whose every line names the request (and trace) it belongs to. */
export function requestLogger(
  logger: Logger,
  ctx: RequestContext,
  extra: Record<string, unknown> = {},
): Logger {
  const trace = parseTraceparent(ctx.traceparent);
  return logger.child({
    ...extra,
    request_id: ctx.requestId,
    ...(ctx.globalRequestId ? { global_request_id: ctx.globalRequestId } : {}),
    ...(trace ? { trace_id: trace.traceId, span_id: trace.spanId } : {}),
  });
}

/** A URL with its password replaced, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
