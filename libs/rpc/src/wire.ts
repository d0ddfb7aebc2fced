import { randomUUID } from 'node:crypto';
import { contextToWire, type RequestContext } from '@basalt/context';
import { BasaltError, errorClassNamed } from '@basalt/errors';
import { RemoteError, RpcDispatchError } from './errors';

/** oslo.messaging's envelope version: the body is `{"oslo.version": "2.0", "oslo.message": "<json>"}`. */
export const OSLO_VERSION = '2.0';
export const PING_METHOD = 'oslo_rpc_server_ping';
export const CONTEXT_PREFIX = '_context_';
/** The `module` of the failure documents of Basalt's own errors. */
const BASALT_MODULE = 'basalt';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A request as oslo.messaging sends it, after the envelope is opened. */
export interface RequestMessage {
  method: string;
  args: Record<string, unknown>;
  version?: string;
  namespace?: string | null;
  _unique_id: string;
  _msg_id?: string;
  _reply_q?: string;
  _timeout?: number | null;
  [context: `_context_${string}`]: unknown;
}

export interface ReplyMessage {
  result: unknown;
  failure: string | null;
  ending: boolean;
  _msg_id: string;
  _unique_id: string;
}

/** A `_msg_id` / `_unique_id` as oslo makes them: `uuid4().hex`. */
export const messageId = () => randomUUID().replaceAll('-', '');

/**
 * The context as oslo's `_context_<key>` fields, with the time it is sent (the receiver's queue
 * wait; oslo peers ignore the key). Spelled out rather than prefixed in a loop: an object built
 * with computed keys is a dictionary, several times dearer to make and serialize, and this is on
 * every message.
 */
export function contextFields(ctx: RequestContext) {
  const wire = contextToWire(ctx);
  return {
    _context_request_id: wire.request_id,
    _context_global_request_id: wire.global_request_id,
    _context_project_id: wire.project_id,
    _context_user_id: wire.user_id,
    _context_roles: wire.roles,
    _context_is_admin: wire.is_admin,
    _context_traceparent: wire.traceparent,
    _context_sent_at: Date.now(),
  };
}

export const MESSAGE_PROPERTIES = { contentType: 'application/json', contentEncoding: 'utf-8' } as const;

export function encodeEnvelope(message: object): Buffer {
  return Buffer.from(
    JSON.stringify({ 'oslo.version': OSLO_VERSION, 'oslo.message': JSON.stringify(message) }),
  );
}

/** Opens an envelope (or takes a bare pre-2.0 message); anything else is a MalformedMessage. */
export function decodeEnvelope(body: Buffer): Record<string, unknown> {
  let outer: unknown;
  try {
    outer = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RpcDispatchError('MalformedMessage', 'body is not JSON');
  }
  if (!isObject(outer)) throw new RpcDispatchError('MalformedMessage', 'body is not a JSON object');
  if (!('oslo.version' in outer)) return outer;
  if (outer['oslo.version'] !== OSLO_VERSION) {
    throw new RpcDispatchError(
      'MalformedMessage',
      `unsupported envelope version ${String(outer['oslo.version'])}`,
    );
  }
  const inner = outer['oslo.message'];
  if (typeof inner !== 'string')
    throw new RpcDispatchError('MalformedMessage', 'oslo.message is not a string');
  let message: unknown;
  try {
    message = JSON.parse(inner);
  } catch {
    throw new RpcDispatchError('MalformedMessage', 'oslo.message is not JSON');
  }
  if (!isObject(message)) throw new RpcDispatchError('MalformedMessage', 'oslo.message is not a JSON object');
  return message;
}

export function parseRequest(body: Buffer): RequestMessage {
  const message = decodeEnvelope(body);
  if (typeof message.method !== 'string' || message.method.length === 0) {
    throw new RpcDispatchError('MalformedMessage', 'request has no method');
  }
  if (message.args !== undefined && !isObject(message.args)) {
    throw new RpcDispatchError('MalformedMessage', 'request args is not an object');
  }
  if (message.version !== undefined && message.version !== null && typeof message.version !== 'string') {
    throw new RpcDispatchError('MalformedMessage', 'request version is not a string');
  }
  return { ...message, args: (message.args as Record<string, unknown>) ?? {} } as RequestMessage;
}

export function parseReply(body: Buffer): ReplyMessage {
  const message = decodeEnvelope(body);
  if (typeof message._msg_id !== 'string')
    throw new RpcDispatchError('MalformedMessage', 'reply has no _msg_id');
  return {
    result: message.result ?? null,
    failure: typeof message.failure === 'string' ? message.failure : null,
    ending: message.ending !== false,
    _msg_id: message._msg_id,
    _unique_id: String(message._unique_id ?? ''),
  };
}

/** oslo's failure document: `{"class","module","message","tb","args","kwargs"}` as a JSON string. */
export function serializeFailure(error: unknown): string {
  const err = error instanceof Error ? error : new Error(String(error));
  const isDispatch = err instanceof RpcDispatchError;
  const kwargs: Record<string, unknown> = err instanceof BasaltError ? { ...err.data } : {};
  kwargs.retryable = err instanceof BasaltError ? err.retryable : false;
  return JSON.stringify({
    class: isDispatch ? err.osloClass : err.name,
    module: isDispatch ? 'oslo_messaging.rpc.dispatcher' : BASALT_MODULE,
    message: err.message,
    tb: (err.stack ?? '')
      .split('\n')
      .slice(1, 12)
      .map((l) => l.trim()),
    args: [err.message],
    kwargs,
  });
}

/**
 * The error a failure document describes: a registered Basalt class is rebuilt as itself (with its
 * message, data and retryability, and the remote stack), anything else is a `RemoteError`.
 */
export function deserializeFailure(failure: string): Error {
  let doc: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(failure);
    if (isObject(parsed)) doc = parsed;
  } catch {
    doc = { message: failure };
  }
  const kwargs = isObject(doc.kwargs) ? { ...doc.kwargs } : {};
  const retryable = kwargs.retryable === true;
  delete kwargs.retryable;
  const className = typeof doc.class === 'string' ? doc.class : 'RemoteError';
  const message = typeof doc.message === 'string' ? doc.message : 'remote error';
  const traceback = Array.isArray(doc.tb) ? doc.tb.map(String) : [];
  const known = doc.module === BASALT_MODULE ? errorClassNamed(className) : undefined;
  if (known) {
    const error = new known(message, { retryable, data: kwargs });
    error.stack = [`${className}: ${message}`, ...traceback.map((line) => `    (remote) ${line}`)].join('\n');
    return error;
  }
  return new RemoteError(
    className,
    typeof doc.module === 'string' ? doc.module : '',
    message,
    kwargs,
    retryable,
    traceback,
  );
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** oslo's rule: same major version, and the implemented minor (then revision) at least the requested. */
export function isVersionCompatible(implemented: string, requested: string): boolean {
  const parse = (v: string) => v.split('.').map((p) => Number.parseInt(p, 10));
  const [iMajor = 0, iMinor = 0, iRev = 0] = parse(implemented);
  const [rMajor = 0, rMinor = 0, rRev = 0] = parse(requested);
  if (iMajor !== rMajor) return false;
  if (iMinor !== rMinor) return iMinor > rMinor;
  return iRev >= rRev;
}
