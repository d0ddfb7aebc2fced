/**
 * npm run bench:rpc — Basalt's RPC against the thinnest amqplib request/reply on the same broker,
 * in the same run, plus oslo.messaging's figures when Debian's python3-oslo.messaging is present.
 * Ratios are Basalt relative to the baseline (> 1 is better); the target is ≥ 0.8 for every call figure.
 * Basalt runs twice besides, with tracing off and on at both ends (spans exported to PostgreSQL
 * as a Basalt process does); that ratio's target is ≥ 0.95. Each round runs Basalt with tracing off
 * on both sides of the traced run, and the two off runs against each other are the run's control:
 * how far a ratio moves when nothing changes. CPU per call and per cast (both processes) beside
 * the times, since a loaded machine stretches wall time far more than CPU.
 *
 * A third contender, "same guarantees", is amqplib hand-written to do exactly what Basalt's wire
 * does and nothing more: oslo's envelope with a context, the topic exchange, a durable queue,
 * mandatory calls that expire, an ack after the reply, persistent confirmed casts. It is the floor
 * for those guarantees on this broker; Basalt relative to it is the cost of Basalt itself.
 */
import { execFileSync, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { adminContext } from '@basalt/context';
import { createDataSource } from '@basalt/db';
import { createLogger } from '@basalt/log';
import {
  clientMetrics,
  clientTracing,
  contextFields,
  decodeEnvelope,
  encodeEnvelope,
  MESSAGE_PROPERTIES,
  messageId,
  RpcTransport,
  serverMetrics,
  serverTracing,
} from '@basalt/rpc';
import { PostgresSpanProcessor, RequestIdSpanProcessor, startTracing, type Tracing } from '@basalt/trace';
import { context, SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import * as amqp from 'amqplib';
import { createTestDatabase } from '../support/db';
import { cpuMsOf, printTable, printTracingTable, type Row, timeConcurrent, timeSequential } from './stats';

const URL = process.env.BASALT_BENCH_BROKER ?? 'amqp://guest:guest@127.0.0.1:5672/';
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CASTS = Number(process.env.BENCH_CASTS ?? 5000);
const WARMUP = 200;

interface Figures {
  p50: number;
  p99: number;
  callsPerSec: number;
  calls8PerSec: number;
  castsPerSec: number;
  /** CPU of both ends (client and server process) per sequential call and per cast, in µs */
  callCpuUs: number;
  castCpuUs: number;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Names {
  rawQueue: string;
  /** the "same guarantees" contender's durable queue, bound to the topic exchange */
  osloQueue: string;
  exchange: string;
  topic: string;
  /** Basalt's server with tracing on: its spans exported, in batches, to PostgreSQL */
  tracedTopic: string;
  /** Where the traced side's spans go, as in production: a database of the run's own */
  database: string;
}

const benchLog = createLogger({ name: 'bench', level: 'silent' });

/** The tracer provider of a bench process, exporting to the bench's database like a Basalt process. */
async function tracing(
  serviceName: string,
  url: string,
): Promise<{ tracing: Tracing; close: () => Promise<void> }> {
  const db = createDataSource({ url, poolSize: 2 });
  await db.initialize();
  return {
    tracing: startTracing({ serviceName, host: 'bench', db }),
    close: async () => {
      await db.destroy();
    },
  };
}

function basaltOptions(exchange: string) {
  return {
    url: URL,
    exchange,
    durable: true,
    quorum: false,
    transientQueueTtlSec: 60,
    prefetch: 64,
    callTimeoutMs: 10_000,
    deadLetterQueue: `${exchange}_dead_letter`,
    connectRetries: 1,
    reconnectDelayMaxMs: 1000,
    log: benchLog,
  };
}

/**
 * The server side, in its own process as in production: a plain amqplib consumer that answers with
 * sendToQueue(replyTo), and a Basalt RpcServer. It reports handled casts on stdout.
 */
async function serve(names: Names): Promise<void> {
  const conn = await amqp.connect(URL, { noDelay: true });
  const ch = await conn.createChannel();
  await ch.assertQueue(names.rawQueue, { durable: false, autoDelete: true });
  let rawCasts = 0;
  let basaltCasts = 0;
  let osloCasts = 0;
  await ch.consume(
    names.rawQueue,
    (msg) => {
      if (!msg) return;
      const body = JSON.parse(msg.content.toString());
      if (msg.properties.replyTo) {
        ch.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify({ result: body.args })), {
          correlationId: msg.properties.correlationId,
        });
      } else rawCasts++;
    },
    { noAck: true },
  );
  const guaranteed = await conn.createChannel();
  await guaranteed.prefetch(64);
  await guaranteed.assertExchange(names.exchange, 'topic', { durable: true, autoDelete: false });
  await guaranteed.assertQueue(names.osloQueue, { durable: true, autoDelete: false });
  await guaranteed.bindQueue(names.osloQueue, names.exchange, names.osloQueue);
  await guaranteed.consume(names.osloQueue, (msg) => {
    if (!msg) return;
    const request = decodeEnvelope(msg.content);
    if (typeof request._reply_q === 'string') {
      const reply = {
        result: request.args,
        failure: null,
        ending: true,
        _msg_id: request._msg_id,
        _unique_id: messageId(),
      };
      guaranteed.publish('', request._reply_q, encodeEnvelope(reply), MESSAGE_PROPERTIES);
    } else osloCasts++;
    guaranteed.ack(msg);
  });
  const traced = await tracing('bench-server', names.database);
  const server = await RpcTransport.connect(basaltOptions(names.exchange));
  for (const [topic, withTracing] of [
    [names.topic, false],
    [names.tracedTopic, true],
  ] as const) {
    await server.serve({
      topic,
      host: 'h',
      // what runService puts around every handler, tracing only on the traced side
      middlewares: [...(withTracing ? [serverTracing(topic, benchLog)] : []), serverMetrics(topic)],
      endpoints: [
        {
          version: '1.0',
          methods: {
            echo: async (args) => args,
            note: async () => {
              basaltCasts++;
              return null;
            },
          },
        },
      ],
    });
  }
  setInterval(() => process.send?.({ rawCasts, basaltCasts, osloCasts }), 5);
  process.on('message', (m) => {
    if (m === 'flush') void traced.tracing.flush().then(() => process.send?.('flushed'));
  });
  process.on('SIGTERM', () => process.exit(0));
  // if the bench itself dies, its server goes with it
  process.on('disconnect', () => process.exit(0));
  process.send?.('ready');
}

type CastCounts = { rawCasts: number; basaltCasts: number; osloCasts: number };

async function measure(
  call: () => Promise<unknown>,
  castAll: () => Promise<unknown>,
  handled: () => number,
  serverPid: number,
): Promise<Figures> {
  // CPU rather than wall time is what a loaded machine distorts least
  const cpuMs = () => cpuMsOf(process.pid) + cpuMsOf(serverPid);
  for (let i = 0; i < WARMUP; i++) await call();
  const callCpu = cpuMs();
  const sequential = await timeSequential(CALLS, call);
  const callCpuUs = ((cpuMs() - callCpu) * 1000) / CALLS;
  const calls8PerSec = await timeConcurrent(CALLS, 8, call);
  const before = handled();
  const castCpu = cpuMs();
  const started = performance.now();
  await castAll();
  while (handled() - before < CASTS) await new Promise((r) => setTimeout(r, 1));
  const castsPerSec = (CASTS / (performance.now() - started)) * 1000;
  const castCpuUs = ((cpuMs() - castCpu) * 1000) / CASTS;
  return {
    p50: sequential.p50,
    p99: sequential.p99,
    callsPerSec: sequential.perSec,
    calls8PerSec,
    castsPerSec,
    callCpuUs,
    castCpuUs,
  };
}

async function clients(
  names: Names,
  counts: () => CastCounts,
  flushServer: () => Promise<void>,
  serverPid: number,
) {
  const conn = await amqp.connect(URL, { noDelay: true });
  const ch = await conn.createChannel();
  const { queue: replyQueue } = await ch.assertQueue('', { exclusive: true });
  const waiting = new Map<string, () => void>();
  await ch.consume(replyQueue, (msg) => msg && waiting.get(msg.properties.correlationId)?.(), {
    noAck: true,
  });
  const rawCall = () =>
    new Promise<void>((resolve) => {
      const id = randomUUID();
      waiting.set(id, () => {
        waiting.delete(id);
        resolve();
      });
      ch.sendToQueue(names.rawQueue, Buffer.from(JSON.stringify({ method: 'echo', args: { n: 1 } })), {
        replyTo: replyQueue,
        correlationId: id,
      });
    });
  const transport = await RpcTransport.connect(basaltOptions(names.exchange), [clientMetrics()]);
  const tracedTransport = await RpcTransport.connect(basaltOptions(names.exchange), [
    clientTracing(),
    clientMetrics(),
  ]);
  const traced = await tracing('bench-client', names.database);
  const ctx = adminContext();
  const basalt = (t: RpcTransport, topic: string) =>
    measure(
      () => t.client.call(ctx, { topic }, 'echo', { n: 1 }),
      () =>
        Promise.all(Array.from({ length: CASTS }, (_, i) => t.client.cast(ctx, { topic }, 'note', { n: i }))),
      () => counts().basaltCasts,
      serverPid,
    );

  // the "same guarantees" contender's client: oslo envelope, topic exchange, mandatory + expiring calls
  const oslo = await conn.createChannel();
  const osloCasting = await conn.createConfirmChannel();
  const osloReplyQueue = `reply_${messageId()}`;
  await oslo.assertQueue(osloReplyQueue, {
    durable: false,
    autoDelete: false,
    arguments: { 'x-expires': 60_000 },
  });
  const osloWaiting = new Map<string, () => void>();
  await oslo.consume(
    osloReplyQueue,
    (msg) => {
      if (!msg) return;
      const id = decodeEnvelope(msg.content)._msg_id as string;
      osloWaiting.get(id)?.();
      osloWaiting.delete(id);
    },
    { noAck: true },
  );
  const osloMessage = (extra: Record<string, unknown>) =>
    encodeEnvelope({
      method: 'echo',
      args: { n: 1 },
      _unique_id: messageId(),
      ...contextFields(ctx),
      ...extra,
    });
  const osloCall = () =>
    new Promise<void>((resolve) => {
      const id = messageId();
      osloWaiting.set(id, resolve);
      oslo.publish(
        names.exchange,
        names.osloQueue,
        osloMessage({ _msg_id: id, _reply_q: osloReplyQueue, _timeout: null }),
        { ...MESSAGE_PROPERTIES, messageId: id, expiration: '10000', deliveryMode: 1, mandatory: true },
      );
    });
  return {
    sameGuarantees: () =>
      measure(
        osloCall,
        async () => {
          for (let i = 0; i < CASTS; i++) {
            osloCasting.publish(names.exchange, names.osloQueue, osloMessage({}), {
              ...MESSAGE_PROPERTIES,
              persistent: true,
              mandatory: true,
            });
          }
          await osloCasting.waitForConfirms();
        },
        () => counts().osloCasts,
        serverPid,
      ),
    baseline: () =>
      measure(
        rawCall,
        async () => {
          for (let i = 0; i < CASTS; i++) {
            ch.sendToQueue(names.rawQueue, Buffer.from(JSON.stringify({ method: 'note', args: { n: i } })));
          }
        },
        () => counts().rawCasts,
        serverPid,
      ),
    basalt: () => basalt(transport, names.topic),
    /** The same with tracing on at both ends; its spans are exported before the next contender runs. */
    basaltTraced: async () => {
      const figures = await basalt(tracedTransport, names.tracedTopic);
      await Promise.all([traced.tracing.flush(), flushServer()]);
      return figures;
    },
    close: async () => {
      await transport.close();
      await tracedTransport.close();
      await traced.tracing.shutdown();
      await traced.close();
      await conn.close();
    },
  };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const medianFigures = (runs: Figures[]): Figures => ({
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  callsPerSec: median(runs.map((r) => r.callsPerSec)),
  calls8PerSec: median(runs.map((r) => r.calls8PerSec)),
  castsPerSec: median(runs.map((r) => r.castsPerSec)),
  callCpuUs: median(runs.map((r) => r.callCpuUs)),
  castCpuUs: median(runs.map((r) => r.castCpuUs)),
});

function oslo(): Figures | undefined {
  const script = join(__dirname, 'oslo_bench.py');
  if (!existsSync('/usr/bin/python3')) return undefined;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import oslo_messaging'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const out = execFileSync('/usr/bin/python3', [script, URL, String(Math.min(CALLS, 1000))], {
    cwd: __dirname,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return JSON.parse(out.trim().split('\n').pop() as string) as Figures;
}

async function main() {
  if (process.argv[2] === 'serve') return serve(JSON.parse(process.argv[3] as string) as Names);
  const id = randomBytes(4).toString('hex');
  const database = await createTestDatabase();
  const names: Names = {
    rawQueue: `bench_raw_${id}`,
    osloQueue: `bench_oslo_${id}`,
    exchange: `bench_${id}`,
    topic: `bench_${id}`,
    tracedTopic: `bench_traced_${id}`,
    database: database.url,
  };
  console.log(
    `bench:rpc — ${CALLS} calls, ${CASTS} casts, ${ROUNDS} rounds (medians), server in its own process`,
  );
  const server = fork(__filename, ['serve', JSON.stringify(names)], {
    execArgv: [
      ...process.execArgv,
      ...(process.env.BENCH_PROFILE_SERVER
        ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_SERVER]
        : []),
    ],
  });
  let counts: CastCounts = { rawCasts: 0, basaltCasts: 0, osloCasts: 0 };
  let flushed: (() => void) | undefined;
  await new Promise<void>((resolve) =>
    server.on('message', (m: unknown) => {
      if (m === 'ready') resolve();
      else if (m === 'flushed') flushed?.();
      else counts = m as CastCounts;
    }),
  );
  const flushServer = () =>
    new Promise<void>((resolve) => {
      flushed = resolve;
      server.send('flush');
    });
  const bench = await clients(names, () => counts, flushServer, server.pid as number);
  const base: Figures[] = [];
  const same: Figures[] = [];
  const ours: Figures[] = [];
  const oursTraced: Figures[] = [];
  const oursAgain: Figures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // alternate, so a noisy neighbour hurts every side alike
    base.push(await bench.baseline());
    same.push(await bench.sameGuarantees());
    // tracing on between two runs with it off: off against off is the noise any on/off ratio has
    const [first, last] = round % 2 === 0 ? [ours, oursAgain] : [oursAgain, ours];
    first.push(await bench.basalt());
    oursTraced.push(await bench.basaltTraced());
    last.push(await bench.basalt());
  }
  await bench.close();
  const spans = await spanCost(database.url);
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));
  await cleanup(names);
  await database.drop();
  const b = medianFigures(base);
  const g = medianFigures(same);
  const o = medianFigures(ours);
  const t = medianFigures(oursTraced);
  const a = medianFigures(oursAgain);
  const theirs = oslo();
  const figure = (name: string, key: keyof Figures, higherIsBetter: boolean): Row => ({
    figure: name,
    baseline: b[key],
    basalt: o[key],
    higherIsBetter,
    sameGuarantees: g[key],
    extra: theirs?.[key],
  });
  printTable(
    [
      figure('call p50 (ms)', 'p50', false),
      figure('call p99 (ms)', 'p99', false),
      figure('calls/s sequential', 'callsPerSec', true),
      figure('calls/s, 8 in flight', 'calls8PerSec', true),
      figure('casts/s (sent to handled)', 'castsPerSec', true),
    ],
    theirs ? 'oslo.messaging' : undefined,
  );
  console.log('ratio = Basalt relative to the baseline (>1 better); target >= 0.8 for the call figures.');
  console.log(
    'same = amqplib doing exactly what Basalt puts on the wire (envelope, topic exchange, durable queue, mandatory, expiration, ack after reply; casts persistent and confirmed); ratio' +
      "' = Basalt relative to it, the cost of Basalt's own code.",
  );
  console.log(
    "Basalt's casts are persistent, publisher-confirmed and acknowledged after the handler; the baseline's are none of these.",
  );
  console.log('\nBasalt with tracing off and on (spans of both ends exported in batches to PostgreSQL):');
  const rows = (on: Figures) => {
    const row = (name: string, key: keyof Figures, higherIsBetter: boolean) => ({
      figure: name,
      off: o[key],
      on: on[key],
      higherIsBetter,
    });
    return [
      row('call p50 (ms)', 'p50', false),
      row('call p99 (ms)', 'p99', false),
      row('calls/s sequential', 'callsPerSec', true),
      row('calls/s, 8 in flight', 'calls8PerSec', true),
      row('casts/s (sent to handled)', 'castsPerSec', true),
      row('CPU µs per call, both ends', 'callCpuUs', false),
      row('CPU µs per cast, both ends', 'castCpuUs', false),
    ];
  };
  printTracingTable(rows(t));
  console.log(
    '\nControl: tracing off against itself, the same runs on either side of the traced one (how far a ratio moves with no change at all):',
  );
  printTracingTable(rows(a), 'ratio = the later runs relative to the earlier ones; 1 is no change.');
  // a traced message is two spans, its send and its handling: what they cost bounds the ratio
  const budget = o.castCpuUs * (1 / 0.95 - 1);
  console.log(
    `\nTracing's floor, in this run: one span made as the middlewares make it costs ${spans.bareUs.toFixed(1)} µs of CPU with the SDK alone, ${spans.exportedUs.toFixed(1)} µs with Basalt's processors (request id, row, batch written to PostgreSQL). A traced message makes two (send, handling): against an untraced cast's ${o.castCpuUs.toFixed(0)} µs (both ends), no traced cast can do better than ${(o.castCpuUs / (o.castCpuUs + 2 * spans.exportedUs)).toFixed(2)} of it (${(o.castCpuUs / (o.castCpuUs + 2 * spans.bareUs)).toFixed(2)} with spans made and never exported); 0.95 would leave ${budget.toFixed(1)} µs for both spans.`,
  );
}

const SPANS = Number(process.env.BENCH_SPANS ?? 20_000);

/**
 * The floor under any traced message: CPU µs of this process per span made as the RPC
 * middlewares make one (started, four attributes, ended), by the SDK with no processor and with
 * Basalt's processors (the request id, and the row written to PostgreSQL in batches, flush included).
 */
async function spanCost(url: string): Promise<{ bareUs: number; exportedUs: number }> {
  const db = createDataSource({ url, poolSize: 2 });
  await db.initialize();
  const perSpan = async (processors: SpanProcessor[]) => {
    const provider = new BasicTracerProvider({ spanProcessors: processors });
    const tracer = provider.getTracer('bench');
    const make = (n: number) => {
      for (let i = 0; i < n; i++) {
        const span = tracer.startSpan('cast bench.note', { kind: SpanKind.PRODUCER }, context.active());
        span.setAttributes({
          'messaging.system': 'rabbitmq',
          'messaging.destination.name': 'bench',
          'messaging.operation.type': 'send',
          'rpc.method': 'note',
        });
        span.end();
      }
    };
    make(WARMUP * 10);
    await provider.forceFlush();
    const before = process.cpuUsage();
    make(SPANS);
    await provider.forceFlush();
    const used = process.cpuUsage(before);
    await provider.shutdown();
    return (used.user + used.system) / SPANS;
  };
  const exported = () => [
    new RequestIdSpanProcessor(),
    new PostgresSpanProcessor(
      db,
      { maxQueueSize: SPANS * 2, maxExportBatchSize: 2048, scheduledDelayMillis: 1000 },
      (what, error) => console.error(what, error),
    ),
  ];
  // alternated over rounds, medians: the JIT and a noisy neighbour favour neither
  const bare: number[] = [];
  const withExport: number[] = [];
  for (let round = 0; round < 5; round++) {
    bare.push(await perSpan([]));
    withExport.push(await perSpan(exported()));
  }
  await db.destroy();
  return { bareUs: median(bare), exportedUs: median(withExport) };
}

async function cleanup(names: Names): Promise<void> {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  for (const q of [
    names.topic,
    `${names.topic}.h`,
    names.tracedTopic,
    `${names.tracedTopic}.h`,
    `${names.exchange}_dead_letter`,
    names.osloQueue,
  ])
    await ch.deleteQueue(q);
  await ch.deleteExchange(names.exchange);
  await conn.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
