import { startTracing, startSpan, endSpan, context, contextOfRequest, contextWithSpan, traceparentOf, SpanKind } from '@basalt/trace';
import { adminContext } from '@basalt/context';
const t = startTracing({ serviceName: 'x', host: 'h' , otlpEndpoint: 'http://127.0.0.1:9/v1/traces', buffer: { maxQueueSize: 1 << 20 } as any});
const ctx = adminContext();
const N = 100000;
function one() {
  const parent = contextOfRequest(ctx);
  const span = startSpan('scheduler.create_volume', { kind: SpanKind.CONSUMER, parent, attributes: {
    'messaging.system': 'rabbitmq', 'messaging.destination.name': 'scheduler', 'messaging.operation.type': 'process', 'rpc.method': 'x', 'messaging.basalt.queue_wait_ms': 3 } });
  traceparentOf(span);
  return context.with(contextWithSpan(parent, span), () => { endSpan(span); });
}
for (let r = 0; r < 3; r++) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < N; i++) one();
  const c = process.cpuUsage(c0);
  console.log('per span us wall', ((performance.now() - t0) * 1000 / N).toFixed(2), 'cpu', ((c.user + c.system) / N).toFixed(2));
}
process.exit(0);
