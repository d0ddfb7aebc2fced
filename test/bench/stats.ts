import { readdirSync, readFileSync } from 'node:fs';
/** Small helpers the benchmarks share: percentiles, timing and a printed comparison table. */
export function percentile(sortedMs: readonly number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] as number;
}

export async function timeSequential(
  n: number,
  op: () => Promise<unknown>,
): Promise<{ p50: number; p99: number; perSec: number }> {
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op();
    samples.push(performance.now() - t);
  }
  const elapsed = performance.now() - started;
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), perSec: (n / elapsed) * 1000 };
}

export async function timeConcurrent(
  n: number,
  concurrency: number,
  op: () => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        await op();
      }
    }),
  );
  return (n / (performance.now() - started)) * 1000;
}

export interface Row {
  readonly figure: string;
  readonly baseline: number;
  readonly basalt: number;
  /** true when a bigger number is better (rates); false for latencies. */
  readonly higherIsBetter: boolean;
  /** The same figure for a reference doing exactly Basalt's wire work, when measured. */
  readonly sameGuarantees?: number;
  readonly extra?: number;
}

/** How Basalt does relative to `reference`: > 1 is better, whatever the unit. */
const ratio = (r: Row, reference: number) => (r.higherIsBetter ? r.basalt / reference : reference / r.basalt);

export function printTable(rows: readonly Row[], extraName?: string): void {
  const fmt = (v: number | undefined) =>
    v === undefined || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2);
  const same = rows.some((r) => r.sameGuarantees !== undefined);
  const line = (cells: string[]) => console.log(cells.join(' ').trimEnd());
  line([
    'figure'.padEnd(28),
    'baseline'.padStart(10),
    'basalt'.padStart(10),
    'ratio'.padStart(7),
    same ? 'same'.padStart(10) : '',
    same ? "ratio'".padStart(7) : '',
    extraName ? extraName.padStart(14) : '',
  ]);
  for (const r of rows) {
    line([
      r.figure.padEnd(28),
      fmt(r.baseline).padStart(10),
      fmt(r.basalt).padStart(10),
      ratio(r, r.baseline).toFixed(2).padStart(7),
      same ? fmt(r.sameGuarantees).padStart(10) : '',
      same && r.sameGuarantees !== undefined ? ratio(r, r.sameGuarantees).toFixed(2).padStart(7) : '',
      extraName ? fmt(r.extra).padStart(14) : '',
    ]);
  }
}

export interface TracingRow {
  readonly figure: string;
  readonly off: number;
  readonly on: number;
  readonly higherIsBetter: boolean;
  /** On relative to off when it is not `on / off` of the columns (the median of paired rounds' ratios). */
  readonly ratio?: number;
}

/** Each figure with tracing off and on, and on relative to off (> 1 better; the target is >= 0.95). */
export function printTracingTable(
  rows: readonly TracingRow[],
  note = 'ratio = tracing on relative to off (>1 better); target >= 0.95 for every figure.',
): void {
  const fmt = (v: number) => (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
  console.log(`${'figure'.padEnd(28)} ${'off'.padStart(10)} ${'on'.padStart(10)} ${'ratio'.padStart(7)}`);
  for (const r of rows) {
    const ratio = r.ratio ?? (r.higherIsBetter ? r.on / r.off : r.off / r.on);
    console.log(
      `${r.figure.padEnd(28)} ${fmt(r.off).padStart(10)} ${fmt(r.on).padStart(10)} ${ratio.toFixed(2).padStart(7)}`,
    );
  }
  console.log(note);
}

/** A /proc stat file's command and the CPU milliseconds (user + system) it counts so far. */
function procStat(path: string): { command: string; cpuMs: number } {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    command: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / 100, // USER_HZ
  };
}

/** CPU milliseconds (user + system) one process, or one of its threads, has used so far. */
export function cpuMsOf(pid: number | string, thread?: number | string): number {
  return procStat(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`).cpuMs;
}

/** The Basalt service a process runs, by its command line, if it runs one. */
export function serviceOf(pid: number | string): string | undefined {
  return /services\/([a-z-]+)\/dist\/main\.js/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))?.[1];
}

/**
 * CPU time (ms) every process on the machine has used so far, summed by what it is: a Basalt
 * service by its name, anything else by its command (postgres, tgtd, beam.smp, …).
 */
export function cpuByProcess(): Map<string, number> {
  const totals = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const { command, cpuMs: ms } = procStat(`/proc/${pid}/stat`);
      const service = serviceOf(pid);
      const name =
        service ??
        (pid === String(process.pid)
          ? 'bench clients'
          : command.startsWith('kworker')
            ? 'kernel workers'
            : command);
      totals.set(name, (totals.get(name) ?? 0) + ms);
    } catch {
      // the process ended while being read
    }
  }
  return totals;
}

/** What each kind of process used between two `cpuByProcess` snapshots, per unit of work, biggest first. */
export function cpuPer(before: Map<string, number>, after: Map<string, number>, units: number): string {
  return [...after]
    .map(([name, ms]) => [name, (ms - (before.get(name) ?? 0)) / units] as const)
    .filter(([, ms]) => ms >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
    .join(', ');
}

/** Busy and total jiffies of the whole machine so far (/proc/stat's first line). */
function machineJiffies(): { busy: number; total: number } {
  const [, ...fields] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/);
  const values = fields.map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Waits until the machine is quiet: under `busyShare` of its CPU used over a 200 ms window, or
 * `maxMs` passed. What one contender left running (a broker writing out persistent messages, a
 * collector) then does not land on the next one's figures.
 */
export async function settle(busyShare = 0.1, maxMs = 10_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = machineJiffies();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = machineJiffies();
    if (after.total > before.total && (after.busy - before.busy) / (after.total - before.total) < busyShare)
      return;
  }
}
