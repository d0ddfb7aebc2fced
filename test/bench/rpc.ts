/**
 * npm run bench:rpc — Basalt's RPC against the thinnest amqplib request/reply on the same broker,
 * in the same run, plus oslo.messaging's figures when Debian's python3-oslo.messaging is present.
 * Ratios are Basalt relative to the baseline (> 1 is better); the target is ≥ 0.8 for every call figure.
 */
import { execFileSync, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { adminContext } from '@basalt/context';
import { createLogger } from '@basalt/log';
import { RpcTransport } from '@basalt/rpc';
import * as amqp from 'amqplib';
import { printTable, type Row, timeConcurrent, timeSequential } from './stats';

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
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Names {
  rawQueue: string;
  exchange: string;
  topic: string;
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
    log: createLogger({ name: 'bench', level: 'silent' }),
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
  const server = await RpcTransport.connect(basaltOptions(names.exchange));
  await server.serve({
    topic: names.topic,
    host: 'h',
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
  setInterval(() => process.send?.({ rawCasts, basaltCasts }), 5);
  process.on('SIGTERM', () => process.exit(0));
  // if the bench itself dies, its server goes with it
  process.on('disconnect', () => process.exit(0));
  process.send?.('ready');
}

type CastCounts = { rawCasts: number; basaltCasts: number };

async function measure(
  call: () => Promise<unknown>,
  castAll: () => Promise<unknown>,
  handled: () => number,
): Promise<Figures> {
  for (let i = 0; i < WARMUP; i++) await call();
  const sequential = await timeSequential(CALLS, call);
  const calls8PerSec = await timeConcurrent(CALLS, 8, call);
  const before = handled();
  const started = performance.now();
  await castAll();
  while (handled() - before < CASTS) await new Promise((r) => setTimeout(r, 1));
  const castsPerSec = (CASTS / (performance.now() - started)) * 1000;
  return {
    p50: sequential.p50,
    p99: sequential.p99,
    callsPerSec: sequential.perSec,
    calls8PerSec,
    castsPerSec,
  };
}

async function clients(names: Names, counts: () => CastCounts) {
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
  const transport = await RpcTransport.connect(basaltOptions(names.exchange));
  const ctx = adminContext();
  return {
    baseline: () =>
      measure(
        rawCall,
        async () => {
          for (let i = 0; i < CASTS; i++) {
            ch.sendToQueue(names.rawQueue, Buffer.from(JSON.stringify({ method: 'note', args: { n: i } })));
          }
        },
        () => counts().rawCasts,
      ),
    basalt: () =>
      measure(
        () => transport.client.call(ctx, { topic: names.topic }, 'echo', { n: 1 }),
        () =>
          Promise.all(
            Array.from({ length: CASTS }, (_, i) =>
              transport.client.cast(ctx, { topic: names.topic }, 'note', { n: i }),
            ),
          ),
        () => counts().basaltCasts,
      ),
    close: async () => {
      await transport.close();
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
  const names: Names = { rawQueue: `bench_raw_${id}`, exchange: `bench_${id}`, topic: `bench_${id}` };
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
  let counts: CastCounts = { rawCasts: 0, basaltCasts: 0 };
  await new Promise<void>((resolve) =>
    server.on('message', (m: unknown) => {
      if (m === 'ready') resolve();
      else counts = m as CastCounts;
    }),
  );
  const bench = await clients(names, () => counts);
  const base: Figures[] = [];
  const ours: Figures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // alternate, so a noisy neighbour hurts both sides alike
    base.push(await bench.baseline());
    ours.push(await bench.basalt());
  }
  await bench.close();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));
  await cleanup(names);
  const b = medianFigures(base);
  const o = medianFigures(ours);
  const theirs = oslo();
  const rows: Row[] = [
    { figure: 'call p50 (ms)', baseline: b.p50, basalt: o.p50, higherIsBetter: false, extra: theirs?.p50 },
    { figure: 'call p99 (ms)', baseline: b.p99, basalt: o.p99, higherIsBetter: false, extra: theirs?.p99 },
    {
      figure: 'calls/s sequential',
      baseline: b.callsPerSec,
      basalt: o.callsPerSec,
      higherIsBetter: true,
      extra: theirs?.callsPerSec,
    },
    {
      figure: 'calls/s, 8 in flight',
      baseline: b.calls8PerSec,
      basalt: o.calls8PerSec,
      higherIsBetter: true,
      extra: theirs?.calls8PerSec,
    },
    {
      figure: 'casts/s (sent to handled)',
      baseline: b.castsPerSec,
      basalt: o.castsPerSec,
      higherIsBetter: true,
      extra: theirs?.castsPerSec,
    },
  ];
  printTable(rows, theirs ? 'oslo.messaging' : undefined);
  console.log('ratio = Basalt relative to the baseline (>1 better); target >= 0.8 for the call figures.');
  console.log(
    "Basalt's casts are persistent, publisher-confirmed and acknowledged after the handler; the baseline's are none of these.",
  );
}

async function cleanup(names: Names): Promise<void> {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  for (const q of [names.topic, `${names.topic}.h`, `${names.exchange}_dead_letter`]) await ch.deleteQueue(q);
  await ch.deleteExchange(names.exchange);
  await conn.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
