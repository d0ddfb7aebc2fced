/**
 * npm run bench:rpc — Basalt's RPC against the thinnest amqplib request/reply on the same broker,
 * in the same run, plus oslo.messaging's figures when Debian's python3-oslo.messaging is present.
 * Ratios are Basalt relative to the baseline (> 1 is better); the target is ≥ 0.8 for every call figure.
 * Basalt runs twice besides, with tracing off and on at both ends (spans exported to PostgreSQL
 * as a Basalt process does); that ratio's target is ≥ 0.95. Each round runs Basalt with tracing off
 * on both sides of the traced run, and the two off runs against each other are the run's control:
 * how far a ratio moves when nothing changes. CPU per call and per cast (both processes) beside
 * the times, since a loaded machine stretches wall time far more than CPU. Basalt runs once more
 * with tracing's floor: one bare SDK span per message at each end, the handler run in its span's
 * context (no processor, no ids carried, nothing stored), the least a traced message costs in a
 * real process; and again with those spans stored in PostgreSQL as Basalt stores its own, the
 * bound for tracing whose spans are kept. Traced against the stored floor is what Basalt's own
 * tracing code costs.
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
import { startTracing } from '@basalt/trace';
import * as amqp from 'amqplib';
import { createTestDatabase } from '../support/db';
import {
  cpuMsOf,
  printTable,
  printTracingTable,
  type Row,
  settle,
  timeConcurrent,
  timeSequential,
} from './stats';
import { bareClientSpans, bareServerSpans, type FloorTracer, floorTracer } from './tracing-floor';

const URL = process.env.BASALT_BENCH_BROKER ?? 'amqp://guest:guest@127.0.0.1:5672/';
const CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const CASTS = Number(process.env.BENCH_CASTS ?? 3000);
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

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);

interface Names {
  rawQueue: string;
  /** the "same guarantees" contender's durable queue, bound to the topic exchange */
  osloQueue: string;
  exchange: string;
  topic: string;
  /** Basalt's server with tracing on: its spans exported, in batches, to PostgreSQL */
  tracedTopic: string;
  /** Basalt's server with tracing's floor: a bare SDK span per message, its handler in the span's context */
  bareTopic: string;
  /** The same floor with its spans stored in PostgreSQL */
  storedTopic: string;
  /** Where the traced side's spans go, as in production: a database of the run's own */
  database: string;
}

const benchLog = createLogger({ name: 'bench', level: 'silent' });

/** A bench process's tracing, and its stored floor, both writing to the bench's database. */
interface BenchTracing {
  readonly stored: FloorTracer;
  /** Writes what both have buffered. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The tracer provider of a bench process, exporting to the bench's database like a Basalt process. */
async function tracing(serviceName: string, url: string): Promise<BenchTracing> {
  const db = createDataSource({ url, poolSize: 2 });
  await db.initialize();
  const traced = startTracing({ serviceName, host: 'bench', db });
  const stored = floorTracer(`${serviceName}-floor`, db);
  return {
    stored,
    flush: async () => {
      await Promise.all([traced.flush(), stored.flush()]);
    },
    close: async () => {
      await traced.shutdown();
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
 * A server side, in its own process as in production. The untraced one: a plain amqplib consumer
 * that answers with sendToQueue(replyTo), the "same guarantees" consumer and Basalt's RpcServer
 * with tracing off — a process where tracing never started, as `[trace] enabled = false` leaves
 * it. The traced one: Basalt's RpcServer with tracing on, and with tracing's floor. Each reports
 * the casts it handled to the bench.
 */
async function serve(names: Names, role: ServerRole): Promise<void> {
  let rawCasts = 0;
  let basaltCasts = 0;
  let osloCasts = 0;
  if (role === 'untraced') {
    await serveContenders(names, {
      raw: () => rawCasts++,
      oslo: () => osloCasts++,
    });
  }
  const traced = role === 'traced' ? await tracing('bench-server', names.database) : undefined;
  const server = await RpcTransport.connect(basaltOptions(names.exchange));
  const topics =
    traced === undefined
      ? ([[names.topic, []]] as const)
      : ([
          [names.tracedTopic, [serverTracing(names.tracedTopic, benchLog)]],
          [names.bareTopic, [bareServerSpans(names.bareTopic, floorTracer('bench-server-bare'))]],
          [names.storedTopic, [bareServerSpans(names.storedTopic, traced.stored)]],
        ] as const);
  for (const [topic, spans] of topics) {
    await server.serve({
      topic,
      host: 'h',
      // what runService puts around every handler, tracing (or a floor) only on those sides
      middlewares: [...spans, serverMetrics(topic)],
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
    if (m === 'flush') void (traced?.flush() ?? Promise.resolve()).then(() => process.send?.('flushed'));
  });
  process.on('SIGTERM', () => process.exit(0));
  // if the bench itself dies, its server goes with it
  process.on('disconnect', () => process.exit(0));
  process.send?.('ready');
}

/** The baseline's and the "same guarantees" contender's consumers. */
async function serveContenders(names: Names, handled: { raw: () => void; oslo: () => void }): Promise<void> {
  const conn = await amqp.connect(URL, { noDelay: true });
  const ch = await conn.createChannel();
  await ch.assertQueue(names.rawQueue, { durable: false, autoDelete: true });
  await ch.consume(
    names.rawQueue,
    (msg) => {
      if (!msg) return;
      const body = JSON.parse(msg.content.toString());
      if (msg.properties.replyTo) {
        ch.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify({ result: body.args })), {
          correlationId: msg.properties.correlationId,
        });
      } else handled.raw();
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
    } else handled.oslo();
    guaranteed.ack(msg);
  });
}

type ServerRole = 'untraced' | 'traced';
type CastCounts = { rawCasts: number; basaltCasts: number; osloCasts: number };

/** A server process as the bench sees it: its pid, what it handled so far, and its flush. */
interface ServerProcess {
  readonly pid: number;
  counts(): CastCounts;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

async function startServer(names: Names, role: ServerRole): Promise<ServerProcess> {
  const profileDir = process.env.BENCH_PROFILE_SERVER;
  const child = fork(__filename, ['serve', JSON.stringify(names), role], {
    execArgv: [...process.execArgv, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])],
  });
  let counts: CastCounts = { rawCasts: 0, basaltCasts: 0, osloCasts: 0 };
  let flushed: (() => void) | undefined;
  await new Promise<void>((resolve) =>
    child.on('message', (m: unknown) => {
      if (m === 'ready') resolve();
      else if (m === 'flushed') flushed?.();
      else counts = m as CastCounts;
    }),
  );
  return {
    pid: child.pid as number,
    counts: () => counts,
    flush: () =>
      new Promise<void>((resolve) => {
        flushed = resolve;
        child.send('flush');
      }),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    },
  };
}

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

async function clients(names: Names, untraced: ServerProcess, traced: ServerProcess) {
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
  const bareTransport = await RpcTransport.connect(basaltOptions(names.exchange), [
    bareClientSpans(floorTracer('bench-client-bare')),
    clientMetrics(),
  ]);
  const clientSpans = await tracing('bench-client', names.database);
  const storedTransport = await RpcTransport.connect(basaltOptions(names.exchange), [
    bareClientSpans(clientSpans.stored),
    clientMetrics(),
  ]);
  const ctx = adminContext();
  const basalt = (t: RpcTransport, topic: string, server: ServerProcess) =>
    measure(
      () => t.client.call(ctx, { topic }, 'echo', { n: 1 }),
      () =>
        Promise.all(Array.from({ length: CASTS }, (_, i) => t.client.cast(ctx, { topic }, 'note', { n: i }))),
      () => server.counts().basaltCasts,
      server.pid,
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
        () => untraced.counts().osloCasts,
        untraced.pid,
      ),
    baseline: () =>
      measure(
        rawCall,
        async () => {
          for (let i = 0; i < CASTS; i++) {
            ch.sendToQueue(names.rawQueue, Buffer.from(JSON.stringify({ method: 'note', args: { n: i } })));
          }
        },
        () => untraced.counts().rawCasts,
        untraced.pid,
      ),
    basalt: () => basalt(transport, names.topic, untraced),
    /** The same with tracing on at both ends; its spans are exported before the next contender runs. */
    basaltTraced: async () => {
      const figures = await basalt(tracedTransport, names.tracedTopic, traced);
      await Promise.all([clientSpans.flush(), traced.flush()]);
      return figures;
    },
    /** Tracing's floor: a bare SDK span per message at both ends, nothing else. */
    basaltBare: () => basalt(bareTransport, names.bareTopic, traced),
    /** The floor with its spans stored, exported before the next contender runs. */
    basaltStored: async () => {
      const figures = await basalt(storedTransport, names.storedTopic, traced);
      await Promise.all([clientSpans.flush(), traced.flush()]);
      return figures;
    },
    close: async () => {
      await transport.close();
      await tracedTransport.close();
      await bareTransport.close();
      await storedTransport.close();
      await clientSpans.close();
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
  if (process.argv[2] === 'serve')
    return serve(JSON.parse(process.argv[3] as string) as Names, process.argv[4] as ServerRole);
  const id = randomBytes(4).toString('hex');
  const database = await createTestDatabase();
  const names: Names = {
    rawQueue: `bench_raw_${id}`,
    osloQueue: `bench_oslo_${id}`,
    exchange: `bench_${id}`,
    topic: `bench_${id}`,
    tracedTopic: `bench_traced_${id}`,
    bareTopic: `bench_bare_${id}`,
    storedTopic: `bench_stored_${id}`,
    database: database.url,
  };
  console.log(
    `bench:rpc — ${CALLS} calls, ${CASTS} casts, ${ROUNDS} rounds (medians), servers in processes of their own (tracing never started in the untraced one)`,
  );
  const [untraced, traced] = await Promise.all([
    startServer(names, 'untraced'),
    startServer(names, 'traced'),
  ]);
  const bench = await clients(names, untraced, traced);
  const base: Figures[] = [];
  const same: Figures[] = [];
  const ours: Figures[] = [];
  const oursTraced: Figures[] = [];
  const oursBare: Figures[] = [];
  const oursStored: Figures[] = [];
  const oursAgain: Figures[] = [];
  // a first round unmeasured: each side's code is compiled and its queues made before any figure counts
  for (const run of [
    bench.baseline,
    bench.sameGuarantees,
    bench.basalt,
    bench.basaltTraced,
    bench.basaltBare,
    bench.basaltStored,
  ])
    await run();
  for (let round = 0; round < ROUNDS; round++) {
    // alternate, so a noisy neighbour hurts every side alike; each starts on a quiet machine
    for (const [runs, run] of [
      [base, bench.baseline],
      [same, bench.sameGuarantees],
    ] as const) {
      await settle();
      runs.push(await run());
    }
    // tracing on (and its floor) between two runs with it off: off against off is the noise any
    // on/off ratio has; the order turns every round so that no side keeps one place in it
    const sides = [
      [ours, bench.basalt],
      [oursTraced, bench.basaltTraced],
      [oursBare, bench.basaltBare],
      [oursStored, bench.basaltStored],
      [oursAgain, bench.basalt],
    ] as const;
    const turned = round % 2 === 0 ? sides : [...sides].reverse();
    for (const [runs, run] of turned) {
      await settle();
      runs.push(await run());
    }
  }
  await bench.close();
  await Promise.all([untraced.stop(), traced.stop()]);
  await cleanup(names);
  await database.drop();
  const b = medianFigures(base);
  const g = medianFigures(same);
  const o = medianFigures(ours);
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
  /**
   * Each figure's values (medians) and its ratio as the median of the rounds' own ratios: a side
   * against the untraced runs of the same round, so that the machine's drift from one round to the
   * next, far larger than tracing's cost, cancels out.
   */
  const rows = (
    side: Figures[],
    against: (round: number, key: keyof Figures) => number,
    reference: Figures = o,
  ) => {
    const on = medianFigures(side);
    const row = (name: string, key: keyof Figures, higherIsBetter: boolean) => ({
      figure: name,
      off: reference[key],
      on: on[key],
      higherIsBetter,
      ratio: median(
        side.map((r, round) => {
          const off = against(round, key);
          return higherIsBetter ? r[key] / off : off / r[key];
        }),
      ),
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
  /** The round's untraced figure: the mean of its two untraced runs, one on either side. */
  const offOf = (round: number, key: keyof Figures) =>
    ((ours[round] as Figures)[key] + (oursAgain[round] as Figures)[key]) / 2;
  printTracingTable(
    rows(oursTraced, offOf),
    'ratio = tracing on relative to off, median of the rounds (>1 better); target >= 0.95 for every figure.',
  );
  console.log(
    '\nControl: tracing off against itself, the same runs on either side of the traced one (how far a ratio moves with no change at all):',
  );
  printTracingTable(
    rows(oursAgain, (round, key) => (ours[round] as Figures)[key]),
    'ratio = the later runs relative to the earlier ones, median of the rounds; 1 is no change.',
  );
  console.log(
    "\nTracing's floor: off against one bare SDK span per message at each end, the handler run in its span's context (no processor, no ids carried, nothing stored):",
  );
  printTracingTable(
    rows(oursBare, offOf),
    'ratio = the floor relative to off: the best any traced figure can reach, since tracing makes at least these spans.',
  );
  console.log(
    '\nThe floor with its spans stored: the same bare spans, written in batches to PostgreSQL by the processor Basalt stores its own with:',
  );
  printTracingTable(
    rows(oursStored, offOf),
    'ratio = the stored floor relative to off: the best a traced figure can reach when its spans are kept.',
  );
  console.log(
    "\nBasalt's tracing against the stored floor: what Basalt's own code adds (request ids, parents carried in the messages, the handler's continued context) to spans that must be made and kept:",
  );
  printTracingTable(
    rows(oursTraced, (round, key) => (oursStored[round] as Figures)[key], medianFigures(oursStored)),
    "ratio = traced relative to the stored floor, median of the rounds; 'off' is the floor's figure. 1 is no cost of Basalt's own.",
  );
  const perSpan = (side: Figures[], key: 'callCpuUs' | 'castCpuUs') =>
    median(side.map((r, round) => (r[key] - offOf(round, key)) / 2)).toFixed(1);
  console.log(
    `In this run one bare span cost ${perSpan(oursBare, 'callCpuUs')} µs of CPU per call and ${perSpan(oursBare, 'castCpuUs')} µs per cast (its end's share of the difference), made between the transport's own work; stored, ${perSpan(oursStored, 'callCpuUs')} and ${perSpan(oursStored, 'castCpuUs')} µs.`,
  );
}

async function cleanup(names: Names): Promise<void> {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  for (const q of [
    names.topic,
    `${names.topic}.h`,
    names.tracedTopic,
    `${names.tracedTopic}.h`,
    names.bareTopic,
    `${names.bareTopic}.h`,
    names.storedTopic,
    `${names.storedTopic}.h`,
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
