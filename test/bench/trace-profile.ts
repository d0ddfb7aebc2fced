/**
 * npm run bench:trace-profile — where tracing's CPU goes in a volume's life. Two stacks like
 * bench:volumes' (file backend, real tgtd), tracing off and on, each of their processes sampled by
 * V8's profiler (`cpu-profile.js`) from its start through bursts of creates and deletes.
 * For each process it prints the CPU per volume (one create and one delete) that its samples give
 * each part of the code, untraced and traced, and what tracing added: OpenTelemetry's SDK, Node's
 * async hooks (the `AsyncLocalStorage` that carries the active span), Basalt's own tracing code,
 * the garbage collector and everything else. A profile counts the wall time its thread was busy,
 * which on a shared machine includes the time it waited for a core, so each process's samples only
 * divide its main thread's CPU, read from /proc as the bursts end, into those parts. The parts
 * that only tracing runs are its cost; the totals, start-up included, move by more than that
 * between two stacks of the same code (bench:volumes compares those, round by round).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataSource } from '@basalt/db';
import { LoadClient } from '../support/load';
import { VolumeStack } from '../support/stack';
import { benchStackEnv } from './bench-stack';
import { cpuMsOf, serviceOf } from './stats';

const VOLUMES = Number(process.env.BENCH_VOLUMES ?? 200);
const CLIENTS = 16;
/** Bursts per stack: the whole life of each process is profiled, so bursts dilute its start-up. */
const BURSTS = 3;
const PROCESSES = ['api', 'scheduler', 'volume-worker'] as const;

/** The part of the code a profile's sample falls in, by the script it runs and its function. */
const PARTS = [
  'OpenTelemetry SDK',
  'async hooks',
  'Basalt tracing',
  'garbage collector',
  'the rest',
] as const;
type Part = (typeof PARTS)[number];

function partOf(url: string, functionName: string): Part | 'idle' {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (url.includes('/node_modules/@opentelemetry/')) return 'OpenTelemetry SDK';
  if (url === 'node:async_hooks' || url === 'node:internal/async_hooks') return 'async hooks';
  if (/\/libs\/trace\/dist\/|\/libs\/rpc\/dist\/observe\.js$/.test(url)) return 'Basalt tracing';
  return 'the rest';
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<{ id: number; callFrame: { url: string; functionName: string } }>;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** CPU ms of each service's main thread (the one V8's profiler samples) so far. */
function mainThreadCpuMs(): Map<string, number> {
  const ms = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const service = serviceOf(pid);
      if (!service) continue;
      ms.set(service, (ms.get(service) ?? 0) + cpuMsOf(pid, pid));
    } catch {
      // the process ended while being read
    }
  }
  return ms;
}

/** A profile's busy samples shared out, in proportion, over `cpuMs` of CPU: the CPU ms of each part. */
function partsOf(file: string, cpuMs: number): Map<Part, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const part = new Map(profile.nodes.map((n) => [n.id, partOf(n.callFrame.url, n.callFrame.functionName)]));
  const ms = new Map<Part, number>(PARTS.map((p) => [p, 0]));
  profile.samples.forEach((id, i) => {
    const p = part.get(id);
    // a sample's time is the delta to the next one
    if (p && p !== 'idle') ms.set(p, (ms.get(p) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  });
  const busy = [...ms.values()].reduce((a, b) => a + b, 0);
  return new Map(PARTS.map((p) => [p, ((ms.get(p) ?? 0) / busy) * cpuMs]));
}

/** Runs the bursts on a stack traced or not; the profiles of its processes, by process. */
async function profiledRun(traced: boolean): Promise<Map<string, Map<Part, number>>> {
  const dir = mkdtempSync(join(tmpdir(), 'basalt-profile-'));
  let cpu = new Map<string, number>();
  const stack = new VolumeStack({
    extraEnv: {
      ...benchStackEnv(traced),
      NODE_OPTIONS: `--require "${join(__dirname, 'cpu-profile.js')}"`,
      BENCH_PROFILE_DIR: dir,
    },
  });
  try {
    await stack.start();
    const load = new LoadClient(CLIENTS, 'bench:bench');
    const db = createDataSource({ url: stack.database.url, poolSize: 2 });
    await db.initialize();
    const count = async (where: string): Promise<number> =>
      (await db.query(`SELECT count(*)::int AS n FROM volumes WHERE ${where}`))[0].n;
    const until = async (done: () => Promise<boolean>) => {
      while (!(await done())) await new Promise((r) => setTimeout(r, 50));
    };
    try {
      const api = `${stack.volumeUrl}/v3/bench`;
      for (let burst = 0; burst < BURSTS; burst++) {
        await load.inParallel(VOLUMES, async (i) => {
          const { status } = await load.send('POST', `${api}/volumes`, {
            volume: { size: 1, name: `p${burst}-${i}` },
          });
          if (status !== 202) throw new Error(`create answered ${status}`);
        });
        await until(
          async () =>
            (await count("status = 'error'")) > 0 || (await count("status = 'available'")) >= VOLUMES,
        );
        if ((await count("status = 'error'")) > 0) throw new Error('a volume went to error');
        const ids: string[] = (await db.query("SELECT id FROM volumes WHERE status = 'available'")).map(
          (r: { id: string }) => r.id,
        );
        await load.inParallel(ids.length, async (i) => {
          const { status } = await load.send('DELETE', `${api}/volumes/${ids[i]}`);
          if (status !== 202) throw new Error(`delete answered ${status}`);
        });
        await until(async () => (await count('NOT deleted')) === 0);
      }
      cpu = mainThreadCpuMs();
    } finally {
      await db.destroy();
    }
  } finally {
    // the processes write their profiles as they exit
    await stack.stop();
  }
  try {
    return new Map(
      PROCESSES.map((name) => [name, partsOf(join(dir, `${name}.cpuprofile`), cpu.get(name) ?? Number.NaN)]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const untraced = await profiledRun(false);
  const traced = await profiledRun(true);
  const perVolume = (ms: number | undefined) => ((ms ?? 0) / (VOLUMES * BURSTS)).toFixed(2);
  console.log(
    `CPU ms per volume (a create and a delete), ${BURSTS} bursts of ${VOLUMES}, main thread, shared out by samples every 100 µs`,
  );
  for (const name of PROCESSES) {
    const off = untraced.get(name) as Map<Part, number>;
    const on = traced.get(name) as Map<Part, number>;
    const total = (m: Map<Part, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    console.log(`\n${name}`);
    console.log(
      `${'part'.padEnd(20)}${'untraced'.padStart(10)}${'traced'.padStart(10)}${'added'.padStart(10)}`,
    );
    for (const part of [...PARTS, 'all'] as const) {
      const a = part === 'all' ? total(off) : (off.get(part) ?? 0);
      const b = part === 'all' ? total(on) : (on.get(part) ?? 0);
      console.log(
        `${part.padEnd(20)}${perVolume(a).padStart(10)}${perVolume(b).padStart(10)}${perVolume(b - a).padStart(10)}`,
      );
    }
  }
  const TRACING_PARTS: readonly Part[] = ['OpenTelemetry SDK', 'async hooks', 'Basalt tracing'];
  const added = (part: Part) =>
    PROCESSES.reduce(
      (sum, name) => sum + (traced.get(name)?.get(part) ?? 0) - (untraced.get(name)?.get(part) ?? 0),
      0,
    );
  console.log('\nwhat tracing added in the three processes together, CPU ms per volume');
  for (const part of TRACING_PARTS) console.log(`${part.padEnd(20)}${perVolume(added(part)).padStart(10)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
