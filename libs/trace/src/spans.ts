import { formatTraceparent, parseTraceparent, type RequestContext } from '@basalt/context';
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
} from '@opentelemetry/api';

/** Span attributes Basalt's reading side relies on. */
export const ATTR = {
  requestId: 'basalt.request_id',
  globalRequestId: 'basalt.global_request_id',
  queueWaitMs: 'messaging.basalt.queue_wait_ms',
  fromStatus: 'basalt.status.from',
  toStatus: 'basalt.status.to',
  changed: 'basalt.status.changed',
  argv: 'process.command_args',
  exitCode: 'process.exit.code',
} as const;

let installed: Tracer | undefined;

/** The tracer of the provider `startTracing` installed, asked of the API only when none is. */
const tracerOf = () => installed ?? trace.getTracer('basalt');

/** Spares every span the API's tracer lookup; undefined when the provider goes. */
export function installTracer(tracer: Tracer | undefined): void {
  installed = tracer;
}

const REQUEST_KEY = createContextKey('basalt.request');

/**
 * A context that adds one value to its parent: made in O(1), where the API's own copies the whole
 * map on every value set — two or three times per message, the bulk of a span's garbage.
 */
class LinkedContext implements Context {
  constructor(
    private readonly parent: Context | undefined,
    private readonly key: symbol,
    private readonly value: unknown,
  ) {}

  getValue(key: symbol): unknown {
    return key === this.key ? this.value : this.parent?.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return new LinkedContext(this, key, value);
  }

  deleteValue(key: symbol): Context {
    return new LinkedContext(this, key, undefined);
  }
}

/** The empty context the contexts of requests and messages grow from. */
const ROOT: Context = new LinkedContext(undefined, Symbol('basalt.root'), undefined);

/**
 * `parent` continued from a request context: its `traceparent` as the remote parent span, its
 * request ids remembered so that every span started under it names the request (see
 * `RequestIdSpanProcessor`), whatever code starts the span.
 */
export function contextOfRequest(ctx: RequestContext, parent: Context = ROOT): Context {
  const ids = parseTraceparent(ctx.traceparent);
  const base = parent === ROOT_CONTEXT ? ROOT : parent;
  const withParent = ids
    ? trace.setSpanContext(base, {
        traceId: ids.traceId,
        spanId: ids.spanId,
        traceFlags: ids.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
        isRemote: true,
      })
    : base;
  return withRequest(withParent, ctx);
}

/** `parent` with the request's ids remembered, its span left as it is. */
export function withRequest(parent: Context, ctx: RequestContext): Context {
  return parent.setValue(REQUEST_KEY, ctx);
}

/** The request whose work `ctx` is part of, if any. */
export function requestOf(ctx: Context): RequestContext | undefined {
  return ctx.getValue(REQUEST_KEY) as RequestContext | undefined;
}

/** The W3C `traceparent` naming `span` as the parent, for a message or a response to carry. */
export function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext();
  // a recording span's ids are the SDK's own, valid by construction
  if (!span.isRecording() && !trace.isSpanContextValid(sc)) return undefined;
  return formatTraceparent({
    traceId: sc.traceId,
    spanId: sc.spanId,
    sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
  });
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent; the active context (the handler, command or request being run) by default. */
  readonly parent?: Context;
}

/** Starts a span that the caller ends (see `endSpan`). */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  const span = tracerOf().startSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL },
    options.parent ?? context.active(),
  );
  // set once on the span: given at the start the SDK copies them twice for the sampler, which reads none
  if (options.attributes) span.setAttributes(options.attributes);
  return span;
}

/** Ends `span`, as failed with the error's message when there is one. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

/**
 * Runs `fn` in a span of its own, active inside `fn` (what `fn` starts becomes its child): ended
 * when `fn` settles, marked failed with the error if it throws. Libvirt operations, tgtd requests
 * and other steps that are not messages or commands are wrapped with this.
 */
export async function withSpan<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const span = startSpan(name, options);
  try {
    const result = await context.with(
      trace.setSpan(options.parent ?? context.active(), span),
      fn,
      undefined,
      span,
    );
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/** `parent` with `span` as its current span: what runs in it starts the span's children. */
export function contextWithSpan(parent: Context, span: Span): Context {
  return trace.setSpan(parent, span);
}

/** The span of the active context, if it records. */
export function activeSpan(): Span | undefined {
  const span = trace.getSpan(context.active());
  return span?.isRecording() ? span : undefined;
}

/**
 * A libvirt operation (define, start, attach a device, …) in a span of its own, named
 * `libvirt <operation>`, with the domain it acts on: what the compute worker wraps each
 * hypervisor call with (the virsh commands inside get their own spans from the runner).
 */
export function withLibvirtSpan<T>(
  operation: string,
  attributes: Attributes & { readonly 'libvirt.domain'?: string },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return withSpan(`libvirt ${operation}`, { kind: SpanKind.CLIENT, attributes }, fn);
}
