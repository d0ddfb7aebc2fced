import { createHash, randomFillSync, randomUUID } from 'node:crypto';

/**
 * Who asked for an operation and how to find it again: travels in every RPC message (as oslo's
 * `_context_<key>` fields) and in every log line.
 */
export interface RequestContext {
  /** `req-<uuid>`, one per API request; every message and log line of that request carries it. */
  readonly requestId: string;
  /** The API gateway's request id, kept across services so a whole user action can be found. */
  readonly globalRequestId?: string;
  readonly projectId?: string;
  readonly userId?: string;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
  /** W3C trace context of the span that sent the message. */
  readonly traceparent?: string;
  /**
   * When the message that brought this context was sent (ms since the epoch, the sender's
   * clock): the receiver's measure of how long it waited in the queue. Stamped at encoding.
   */
  readonly sentAt?: number;
}

const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

export function isRequestId(value: string): boolean {
  return REQUEST_ID.test(value);
}

/** A context for work a service starts by itself (periodic tasks, recovery at start). */
export function adminContext(overrides: Partial<RequestContext> = {}): RequestContext {
  return {
    requestId: newRequestId(),
    roles: ['admin'],
    isAdmin: true,
    traceparent: newTraceparent(),
    ...overrides,
  };
}

export interface TraceIds {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** The last header parsed: a message's is read where it arrives, where its span starts and where it is sent on. */
let lastHeader: string | undefined;
let lastIds: TraceIds | undefined;

export function parseTraceparent(header: string | undefined): TraceIds | undefined {
  if (header === lastHeader) return lastIds;
  lastIds = parseHeader(header);
  lastHeader = header;
  return lastIds;
}

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

function parseHeader(header: string | undefined): TraceIds | undefined {
  if (header === undefined) return undefined;
  // as senders write it, else as a lenient reader takes it
  const match = TRACEPARENT.exec(header) ?? TRACEPARENT.exec(header.trim().toLowerCase());
  if (!match) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(ids: TraceIds): string {
  return `00-${ids.traceId}-${ids.spanId}-${ids.sampled ? '01' : '00'}`;
}

/**
 * Random bytes as hex from a pooled buffer: one getrandom call per 4 KiB instead of one per id
 * (two per request, and a system call is dear on a VM). For identifiers, never for secrets.
 */
const idPool = Buffer.alloc(4096);
let idPoolOffset = idPool.length;
function randomIdHex(bytes: number): string {
  if (idPoolOffset + bytes > idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  idPoolOffset += bytes;
  return idPool.toString('hex', idPoolOffset - bytes, idPoolOffset);
}

/** A new root trace, or a child span of `parent` (same trace id, new span id). */
export function newTraceparent(parent?: string): string {
  const parsed = parseTraceparent(parent);
  return formatTraceparent({
    traceId: parsed?.traceId ?? randomIdHex(16),
    spanId: randomIdHex(8),
    sampled: parsed?.sampled ?? true,
  });
}

/**
 * The trace every HTTP request carrying the gateway's request id `requestId` (and no
 * `traceparent`) joins: its trace id a hash of the id, its parent the request's root — a span no
 * process records, whose id `requestRootSpanId` gives — so that the requests of one user action
 * are one tree, found without asking anyone.
 */
export function gatewayTraceparent(requestId: string): string {
  const traceId = createHash('sha256').update(`basalt request ${requestId}`).digest('hex').slice(0, 32);
  return formatTraceparent({ traceId, spanId: requestRootSpanId(traceId), sampled: true });
}

/** The span id of the root a gateway's request id stands for in the trace `traceId` (see `gatewayTraceparent`). */
export function requestRootSpanId(traceId: string): string {
  return traceId.slice(0, 16);
}

/** The same request continued in a new span: what a handler passes on to the messages it sends. */
export function childContext(ctx: RequestContext): RequestContext {
  return { ...ctx, traceparent: newTraceparent(ctx.traceparent) };
}

/** oslo.context's `to_dict()` keys, the form a context takes on the wire. */
export interface WireContext {
  readonly request_id: string;
  readonly global_request_id: string | null;
  readonly project_id: string | null;
  readonly user_id: string | null;
  readonly roles: string[];
  readonly is_admin: boolean;
  readonly traceparent: string | null;
}

export function contextToWire(ctx: RequestContext): WireContext {
  return {
    request_id: ctx.requestId,
    global_request_id: ctx.globalRequestId ?? null,
    project_id: ctx.projectId ?? null,
    user_id: ctx.userId ?? null,
    roles: [...ctx.roles],
    is_admin: ctx.isAdmin,
    traceparent: ctx.traceparent ?? null,
  };
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

/** Reads a context sent by Basalt or by any oslo.messaging peer (which may use older key names). */
export function contextFromWire(wire: Record<string, unknown>): RequestContext {
  const roles = Array.isArray(wire.roles) ? wire.roles.filter((r): r is string => typeof r === 'string') : [];
  const requestId = str(wire.request_id);
  return {
    requestId: requestId ?? newRequestId(),
    globalRequestId: str(wire.global_request_id),
    projectId: str(wire.project_id) ?? str(wire.project) ?? str(wire.tenant),
    userId: str(wire.user_id) ?? str(wire.user),
    roles,
    isAdmin: wire.is_admin === true,
    traceparent: parseTraceparent(str(wire.traceparent)) ? str(wire.traceparent) : undefined,
    ...(typeof wire.sent_at === 'number' && Number.isFinite(wire.sent_at) ? { sentAt: wire.sent_at } : {}),
  };
}
