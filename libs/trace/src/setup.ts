import {
  type Context,
  context,
  createNoopMeter,
  type Meter,
  type MeterProvider,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type BufferConfig,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { metrics, outcomeOf } from './metrics';
import { PostgresSpanProcessor, type SqlClient } from './pg-exporter';
import { ATTR, installTracer, requestOf } from './spans';
import { TraceStore } from './store';

export interface TracingOptions {
  /** The process, as spans and the services table name it: basalt-volume, … */
  readonly serviceName: string;
  readonly host: string;
  /** Where spans are stored (`trace_spans`); none: not stored. */
  readonly db?: SqlClient;
  /** An OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`) that gets the same spans. */
  readonly otlpEndpoint?: string;
  /** Seconds stored spans are kept; every process purges older ones now and then. */
  readonly retentionSec?: number;
  /** The buffer between finished spans and each exporter: spans beyond `maxQueueSize` are dropped, and counted. */
  readonly buffer?: BufferConfig;
  /** Told when an export or a purge fails (the spans are lost, the process goes on). */
  readonly onError?: (what: string, error: unknown) => void;
}

export interface Tracing {
  /** Exports what is buffered now (tests, benchmarks, a stopping process). */
  flush(): Promise<void>;
  /** Flushes, stops exporting and uninstalls the provider. */
  shutdown(): Promise<void>;
}

/** The SDK's self-observability counter of finished spans; `error.type` says why one was not exported. */
const PROCESSED = 'otel.sdk.processor.span.processed';
const QUEUE_FULL = 'queue_full';

/**
 * A meter provider for the batch processor's self-observability: the one counter of dropped spans
 * it reports goes to `basalt_trace_spans_dropped_total`, everything else nowhere.
 */
function droppedSpansMeter(exporter: string): MeterProvider {
  const noop = createNoopMeter();
  const meter: Meter = Object.create(noop);
  meter.createCounter = ((name: string, options) =>
    name === PROCESSED
      ? {
          add(count: number, attributes?: Record<string, unknown>) {
            if (attributes?.['error.type'] === QUEUE_FULL) metrics.spansDropped.inc({ exporter }, count);
          },
        }
      : noop.createCounter(name, options)) as Meter['createCounter'];
  return { getMeter: () => meter };
}

/** Counts what each export did, and says when one failed. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly name: string,
    private readonly inner: SpanExporter,
    private readonly onError: (what: string, error: unknown) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      metrics.spansExported.inc(
        { exporter: this.name, outcome: ok ? 'ok' : outcomeOf(result.error) },
        spans.length,
      );
      if (!ok) this.onError(`exporting ${spans.length} spans to ${this.name}`, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Names the request on every span started within one, whatever code starts it. */
export class RequestIdSpanProcessor implements SpanProcessor {
  onStart(span: Span, parent: Context): void {
    const request = requestOf(parent);
    if (!request) return;
    span.setAttribute(ATTR.requestId, request.requestId);
    if (request.globalRequestId && request.globalRequestId !== request.requestId)
      span.setAttribute(ATTR.globalRequestId, request.globalRequestId);
  }
  onEnd(): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The buffer between finished spans and each exporter when `[trace]` says nothing of it. */
export const SPAN_BUFFER_DEFAULTS: Readonly<Required<BufferConfig>> = {
  maxQueueSize: 8192,
  maxExportBatchSize: 2048,
  scheduledDelayMillis: 1000,
  exportTimeoutMillis: 10_000,
};

/**
 * Installs the tracer provider of this process: the active context follows async calls, spans go
 * in batches, off the hot path, to PostgreSQL and/or an OTLP collector through bounded buffers.
 */
export function startTracing(options: TracingOptions): Tracing {
  const onError = options.onError ?? (() => undefined);
  const buffer = { ...SPAN_BUFFER_DEFAULTS, ...options.buffer };
  // each exporter's series exist from the start, at zero: "nothing dropped" is a reading too
  const processors: SpanProcessor[] = [new RequestIdSpanProcessor()];
  if (options.db) {
    metrics.spansDropped.inc({ exporter: 'postgresql' }, 0);
    processors.push(new PostgresSpanProcessor(options.db, buffer, onError));
  }
  if (options.otlpEndpoint) {
    metrics.spansDropped.inc({ exporter: 'otlp' }, 0);
    const exporter = new CountingExporter(
      'otlp',
      new OTLPTraceExporter({ url: options.otlpEndpoint }),
      onError,
    );
    processors.push(
      new BatchSpanProcessor(exporter, {
        ...buffer,
        selfObsMeterProvider: droppedSpansMeter('otlp'),
      } as BufferConfig),
    );
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'host.name': options.host,
      'process.pid': process.pid,
    }),
    spanProcessors: processors,
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  installTracer(provider.getTracer('basalt'));

  let purge: NodeJS.Timeout | undefined;
  if (options.db && options.retentionSec) {
    const store = new TraceStore(options.db);
    const retention = options.retentionSec;
    // often enough that the table stays near its retention, seldom enough to cost nothing
    const everyMs = Math.min(Math.max(retention / 24, 60), 3600) * 1000;
    purge = setInterval(() => {
      store.purge(retention).catch((error) => onError('purging old spans', error));
    }, everyMs);
    purge.unref();
  }

  return {
    flush: () => provider.forceFlush(),
    async shutdown() {
      if (purge) clearInterval(purge);
      await provider.shutdown();
      installTracer(undefined);
      trace.disable();
      context.disable();
    },
  };
}
