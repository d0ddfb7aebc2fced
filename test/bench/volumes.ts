/**
 * npm run bench:volumes — the file backend with real tgt exports, api + scheduler + volume-worker
 * as separate processes: 200 volumes created by 16 concurrent clients, then deleted; then volumes
 * arriving at a steady rate below what the burst reached, and one at a time, to show the latency
 * of the pipeline itself when nothing queues behind an API that accepts faster than storage works. Also what each way
 * of changing a live tgt target costs, measured in the same run. Last, the API's throughput with
 * every token validated by a real Keystone (its answers cached) against the same API in noauth mode.
 * The volume phases run with tracing off and on in every process (`[trace] enabled`), and the
 * table gives each figure's ratio; and a third time with tracing off but the async context that
 * tracing's parent links need turned on (`async-context-floor.js`), the part of tracing's cost
 * that is no span at all.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDataSource } from '@basalt/db';
import { TgtdControl, TgtMode, TgtOp } from '../../services/volume-worker/src/targets/tgtd-control';
import { KeystoneFixture } from '../support/keystone';
import { LoadClient } from '../support/load';
import { VolumeStack } from '../support/stack';
import { benchStackEnv } from './bench-stack';
import { cpuByProcess, cpuMsOf, cpuPer, percentile, printTracingTable } from './stats';

const run = promisify(execFile);
const VOLUMES = Number(process.env.BENCH_VOLUMES ?? 200);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SOLO = 30;
const PACED = 200;
/** Offered loads for the paced phase, as shares of the rate the burst reached. */
const PACED_SHARES = [0.5, 0.8, 1];
/** Volume shows per round of the identity phase, and rounds per identity mode. */
const AUTH_REQUESTS = 4000;
const AUTH_ROUNDS = 3;
/** Where a volume's spans are made and stored: what its CPU figure adds up. */
const TRACED_PROCESSES = ['api', 'scheduler', 'volume-worker', 'postgres'];
/** Runs of the volume phases with tracing off and on each (medians). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Run {
  readonly createPerSec: number;
  readonly acceptedPerSec: number;
  readonly createP50: number;
  readonly createP90: number;
  readonly queuedP50: number;
  readonly workerP50: number;
  readonly soloP50: number;
  readonly soloP90: number;
  readonly paced: ReadonlyArray<{ share: number; rate: number; p50: number; p90: number }>;
  readonly deletePerSec: number;
  readonly targetsLeft: number;
  readonly createCpu: string;
  /** CPU ms per created volume of the processes tracing runs in and stores to: api, scheduler, volume-worker, PostgreSQL */
  readonly tracedCpuMs: number;
  readonly costs?: { tgtAdmin: number; tgtadm: number; socket: number };
}

/** How a stack traces: not at all, only the async context tracing runs in, or fully. */
type Tracing = 'off' | 'context' | 'on';

/** One full run on a stack of its own, traced as `tracing` says in every process. */
async function runOnce(tracing: Tracing, extras: boolean): Promise<Run> {
  const stack = new VolumeStack({
    extraEnv: {
      ...benchStackEnv(tracing === 'on'),
      ...(tracing === 'context'
        ? { NODE_OPTIONS: `--require "${join(__dirname, 'async-context-floor.js')}"` }
        : {}),
    },
  });
  // stop the stack whatever happens, so no process, tgtd or database outlives the run
  try {
    await stack.start();
  } catch (error) {
    await stack.stop();
    throw error;
  }
  const load = new LoadClient(CLIENTS, 'bench:bench');
  const db = createDataSource({ url: stack.database.url, poolSize: 2 });
  await db.initialize();
  try {
    const api = `${stack.volumeUrl}/v3/bench`;
    // one query per poll, every 25 ms: the poller shares the machine with what it measures, and
    // the latencies come from the rows' own timestamps
    const counts = async (): Promise<Record<string, number>> => {
      const rows: { status: string; n: number }[] = await db.query(
        "SELECT CASE WHEN deleted THEN 'deleted' ELSE status END AS status, count(*)::int AS n FROM volumes GROUP BY 1",
      );
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    };
    const waitUntil = async (done: (c: Record<string, number>) => boolean) => {
      for (;;) {
        const c = await counts();
        if (c.error || c.error_deleting) throw new Error(`a volume failed: ${JSON.stringify(c)}`);
        if (done(c)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    /** Creates PACED volumes, one every 1/rate s whatever the answers; their latencies; then deletes them. */
    const pacedCreates = async (prefix: string, rate: number): Promise<number[]> => {
      const posts: Promise<string>[] = [];
      const start = performance.now();
      for (let i = 0; i < PACED; i++) {
        const due = start + (i * 1000) / rate;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        posts.push(
          load.send('POST', `${api}/volumes`, { volume: { size: 1, name: `${prefix}${i}` } }).then((r) => {
            if (r.status !== 202) throw new Error(`create ${prefix}${i} answered ${r.status}`);
            return JSON.parse(r.body).volume.id as string;
          }),
        );
      }
      const ids = await Promise.all(posts);
      await waitUntil((c) => (c.available ?? 0) >= PACED);
      const rows: { ms: number }[] = await db.query(
        `SELECT extract(epoch FROM launched_at - created_at) * 1000 AS ms FROM volumes WHERE id = ANY($1)`,
        [ids],
      );
      const deletedBefore = (await counts()).deleted ?? 0;
      await Promise.all(ids.map((id) => load.send('DELETE', `${api}/volumes/${id}`)));
      await waitUntil((c) => (c.deleted ?? 0) >= deletedBefore + PACED);
      return rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
    };

    const cpuBefore = cpuByProcess();
    const started = performance.now();
    await load.inParallel(VOLUMES, async (i) => {
      const { status } = await load.send('POST', `${api}/volumes`, { volume: { size: 1, name: `b${i}` } });
      if (status !== 202) throw new Error(`create ${i} answered ${status}`);
    });
    const acceptedSeconds = (performance.now() - started) / 1000;
    await waitUntil((c) => (c.available ?? 0) >= VOLUMES);
    const createSeconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuByProcess();
    const createCpu = cpuPer(cpuBefore, cpuAfter, VOLUMES);
    const tracedCpuMs =
      TRACED_PROCESSES.reduce(
        (sum, name) => sum + (cpuAfter.get(name) ?? 0) - (cpuBefore.get(name) ?? 0),
        0,
      ) / VOLUMES;
    const stages: { total: number; queued: number; worker: number }[] = await db.query(
      `SELECT extract(epoch FROM launched_at - created_at) * 1000 AS total,
              extract(epoch FROM scheduled_at - created_at) * 1000 AS queued,
              extract(epoch FROM launched_at - scheduled_at) * 1000 AS worker
         FROM volumes WHERE status = 'available'`,
    );
    const sorted = (key: 'total' | 'queued' | 'worker') =>
      stages.map((r) => Number(r[key])).sort((a, b) => a - b);
    const latencies = sorted('total');
    const ids: string[] = (await db.query("SELECT id FROM volumes WHERE status = 'available'")).map(
      (r: { id: string }) => r.id,
    );
    const deleteStarted = performance.now();
    await load.inParallel(ids.length, async (i) => {
      const { status } = await load.send('DELETE', `${api}/volumes/${ids[i]}`);
      if (status !== 202) throw new Error(`delete ${ids[i]} answered ${status}`);
    });
    await waitUntil((c) => (c.deleted ?? 0) >= VOLUMES);
    const deleteSeconds = (performance.now() - deleteStarted) / 1000;
    const leftover = (await stack.tgtd.targets()).trim();

    // open-loop arrivals at rates the backend keeps up with: the latency a user sees when the
    // service is not overloaded (the burst above measures queueing behind a faster API)
    const burstRate = VOLUMES / createSeconds;
    const paced: { share: number; rate: number; p50: number; p90: number }[] = [];
    for (const share of PACED_SHARES) {
      const rate = Math.max(1, Math.floor(burstRate * share));
      const latencies = await pacedCreates(`paced${share}-`, rate);
      paced.push({ share, rate, p50: percentile(latencies, 50), p90: percentile(latencies, 90) });
    }

    // the same pipeline with nothing queued: one client, one volume at a time
    const alone: number[] = [];
    for (let i = 0; i < SOLO; i++) {
      const created = await load.send('POST', `${api}/volumes`, { volume: { size: 1, name: `solo${i}` } });
      if (created.status !== 202) throw new Error(`create solo${i} answered ${created.status}`);
      const id = JSON.parse(created.body).volume.id as string;
      for (;;) {
        const [row] = await db.query(
          'SELECT status, extract(epoch FROM launched_at - created_at) * 1000 AS ms FROM volumes WHERE id = $1',
          [id],
        );
        if (row.status === 'available') {
          alone.push(Number(row.ms));
          break;
        }
        if (row.status === 'error') throw new Error(`solo${i} went to error`);
        await new Promise((r) => setTimeout(r, 2));
      }
      await load.send('DELETE', `${api}/volumes/${id}`);
    }
    alone.sort((a, b) => a - b);

    const costs = extras ? await targetChangeCosts(stack) : undefined;
    if (extras) await identityCost(stack, load);
    return {
      createPerSec: VOLUMES / createSeconds,
      acceptedPerSec: VOLUMES / acceptedSeconds,
      createP50: percentile(latencies, 50),
      createP90: percentile(latencies, 90),
      queuedP50: percentile(sorted('queued'), 50),
      workerP50: percentile(sorted('worker'), 50),
      soloP50: percentile(alone, 50),
      soloP90: percentile(alone, 90),
      paced,
      deletePerSec: VOLUMES / deleteSeconds,
      targetsLeft: leftover === '' ? 0 : leftover.split('\n').filter((l) => l.startsWith('Target')).length,
      createCpu,
      tracedCpuMs,
      ...(costs ? { costs } : {}),
    };
  } finally {
    load.close();
    await db.destroy();
    await stack.stop();
  }
}

async function main() {
  const runs: Record<Tracing, Run[]> = { off: [], context: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // turn the order every round, so a warmer machine favours no side
    const order: Tracing[] = round % 2 === 0 ? ['off', 'context', 'on'] : ['on', 'context', 'off'];
    for (const tracing of order) {
      runs[tracing].push(await runOnce(tracing, round === 0 && tracing === 'off'));
    }
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  // each round's on against its own off: stacks started minutes apart differ more than tracing does
  const figure = (name: string, of: (r: Run) => number, higherIsBetter: boolean, side: Tracing = 'on') => ({
    figure: name,
    off: median(runs.off.map(of)),
    on: median(runs[side].map(of)),
    higherIsBetter,
    ratio: median(
      runs[side].map((on, round) => {
        const off = of(runs.off[round] as Run);
        return higherIsBetter ? of(on) / off : off / of(on);
      }),
    ),
  });
  const [off] = runs.off as [Run];
  const [on] = runs.on as [Run];
  console.log(
    `bench:volumes — ${VOLUMES} volumes, ${CLIENTS} concurrent clients, file backend, real tgtd; tracing off and on, ${ROUNDS} round(s) each (medians)`,
  );
  printTracingTable(
    [
      figure('create volumes/s (burst)', (r) => r.createPerSec, true),
      figure('API accepted/s (burst)', (r) => r.acceptedPerSec, true),
      figure('create→available p50 ms', (r) => r.createP50, false),
      figure('create→available p90 ms', (r) => r.createP90, false),
      figure('  created→scheduled p50', (r) => r.queuedP50, false),
      figure('  scheduled→available p50', (r) => r.workerP50, false),
      figure('one at a time p50 ms', (r) => r.soloP50, false),
      figure('one at a time p90 ms', (r) => r.soloP90, false),
      ...PACED_SHARES.map((share, i) =>
        figure(`paced ${(share * 100).toFixed(0)}% p50 ms`, (r) => r.paced[i]?.p50 ?? Number.NaN, false),
      ),
      figure('delete volumes/s (burst)', (r) => r.deletePerSec, true),
      figure('CPU ms per volume (burst)', (r) => r.tracedCpuMs, false),
    ],
    'ratio = tracing on relative to off, median of the rounds (>1 better); target >= 0.95 for every figure. CPU: api, scheduler, volume-worker and PostgreSQL.',
  );
  console.log('targets: create >= 33 volumes/s, create→available p50 <= 50 ms, in either column.');
  console.log(
    "\nThe async context alone (tracing off, OpenTelemetry's AsyncLocalStorage context manager on): what tracing costs before it makes a span",
  );
  printTracingTable(
    [
      figure('create volumes/s (burst)', (r) => r.createPerSec, true, 'context'),
      figure('create→available p50 ms', (r) => r.createP50, false, 'context'),
      figure('one at a time p50 ms', (r) => r.soloP50, false, 'context'),
      figure('delete volumes/s (burst)', (r) => r.deletePerSec, true, 'context'),
      figure('CPU ms per volume (burst)', (r) => r.tracedCpuMs, false, 'context'),
    ],
    "ratio = with the async context relative to off, median of the rounds: the best any traced figure can reach, since tracing's parent links need it.",
  );
  console.log(`CPU ms per created volume, tracing off: ${off.createCpu}`);
  console.log(`CPU ms per created volume, tracing on:  ${on.createCpu}`);
  console.log(
    `paced rates (off/on): ${off.paced.map((p) => p.rate).join(', ')} / ${on.paced.map((p) => p.rate).join(', ')} per s`,
  );
  console.log(`targets left after the deletes: ${off.targetsLeft} / ${on.targetsLeft}`);
  const costs = off.costs;
  if (costs) {
    console.log(
      `making one export on a live tgtd: tgt-admin --update ${costs.tgtAdmin.toFixed(1)} ms, four tgtadm runs ${costs.tgtadm.toFixed(1)} ms, the same four requests on tgtd's socket ${costs.socket.toFixed(1)} ms (the worker's way; ${(costs.tgtadm / costs.socket).toFixed(0)}x cheaper than tgtadm)`,
    );
  }
}

/**
 * Volume shows per second from CLIENTS clients through two more api processes started together,
 * one in noauth mode and one validating every token with a real Keystone (keystonemiddleware's
 * way, with its cache), in alternating rounds so both see the same machine; and what a token's
 * first check costs.
 */
async function identityCost(stack: VolumeStack, load: LoadClient): Promise<void> {
  const keystone = await KeystoneFixture.start();
  try {
    const service = await keystone.createServiceUser();
    // an admin, as the noauth caller is, so both modes answer with the same view
    const user = await keystone.createUser('admin');
    const [noauth, keystoneApiProcess] = await Promise.all([
      stack.startExtraApi({ BASALT__API__AUTH_STRATEGY: 'noauth' }),
      stack.startExtraApi({
        BASALT__API__AUTH_STRATEGY: 'keystone',
        BASALT__KEYSTONE_AUTHTOKEN__AUTH_URL: keystone.url,
        BASALT__KEYSTONE_AUTHTOKEN__USERNAME: service.name,
        BASALT__KEYSTONE_AUTHTOKEN__PASSWORD: service.password,
      }),
    ]);
    const noauthApi = `${noauth.url}/v3/bench`;
    const noauthToken = 'bench:bench';
    const keystoneApi = `${keystoneApiProcess.url}/v3/${user.projectId}`;
    const keystoneToken = await keystone.token(user);
    const volumeIn = async (base: string, tok: string) => {
      const created = await load.send(
        'POST',
        `${base}/volumes`,
        { volume: { size: 1, name: 'auth-bench' } },
        tok,
      );
      if (created.status !== 202) throw new Error(`create answered ${created.status}: ${created.body}`);
      return JSON.parse(created.body).volume.id as string;
    };
    const targets = {
      noauth: {
        url: `${noauthApi}/volumes/${await volumeIn(noauthApi, noauthToken)}`,
        token: noauthToken,
        pid: noauth.process.pid as number,
      },
      keystone: {
        url: `${keystoneApi}/volumes/${await volumeIn(keystoneApi, keystoneToken)}`,
        token: keystoneToken,
        pid: keystoneApiProcess.process.pid as number,
      },
    };
    // the api process's own CPU per request too: wall-clock rates move with whatever else runs
    const cpu = { noauth: Number.POSITIVE_INFINITY, keystone: Number.POSITIVE_INFINITY };
    const round = async (target: { url: string; token: string; pid: number }, mode?: keyof typeof cpu) => {
      const cpuBefore = cpuMsOf(target.pid);
      const started = performance.now();
      await load.inParallel(AUTH_REQUESTS, async () => {
        const { status } = await load.send('GET', target.url, undefined, target.token);
        if (status !== 200) throw new Error(`show answered ${status}`);
      });
      const rate = AUTH_REQUESTS / ((performance.now() - started) / 1000);
      if (mode) cpu[mode] = Math.min(cpu[mode], ((cpuMsOf(target.pid) - cpuBefore) * 1000) / AUTH_REQUESTS);
      return rate;
    };
    await round(targets.noauth);
    await round(targets.keystone);
    const best = { noauth: 0, keystone: 0 };
    for (let i = 0; i < AUTH_ROUNDS; i++) {
      best.noauth = Math.max(best.noauth, await round(targets.noauth, 'noauth'));
      best.keystone = Math.max(best.keystone, await round(targets.keystone, 'keystone'));
    }
    // a token's first request: the api asks Keystone, then caches the answer
    const first: number[] = [];
    for (let i = 0; i < 20; i++) {
      const fresh = await keystone.token(user);
      const started = performance.now();
      const { status } = await load.send('GET', targets.keystone.url, undefined, fresh);
      first.push(performance.now() - started);
      if (status !== 200) throw new Error(`show with a fresh token answered ${status}`);
    }
    first.sort((a, b) => a - b);
    const ratio = best.keystone / best.noauth;
    console.log(
      `identity: volume show, ${CLIENTS} clients, best of ${AUTH_ROUNDS} rounds of ${AUTH_REQUESTS}: noauth ${best.noauth.toFixed(0)}/s, keystone (tokens validated by Keystone, cached) ${best.keystone.toFixed(0)}/s = ${(ratio * 100).toFixed(1)}% of noauth (target >= 90%)`,
    );
    console.log(
      `  api process CPU per show (least of the rounds): noauth ${cpu.noauth.toFixed(0)} µs, keystone ${cpu.keystone.toFixed(0)} µs (${signed((cpu.keystone / cpu.noauth - 1) * 100)}%)`,
    );
    console.log(
      `  a token's first request (validated at Keystone, not yet cached): p50 ${percentile(first, 50).toFixed(1)} ms, p90 ${percentile(first, 90).toFixed(1)} ms`,
    );
  } finally {
    await keystone.cleanup();
  }
}

const signed = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;

/** Wall time of one export (target, LUN, CHAP account, binding) made each way tgtd can be told. */
async function targetChangeCosts(
  stack: VolumeStack,
): Promise<{ tgtAdmin: number; tgtadm: number; socket: number }> {
  const c = String(stack.tgtd.controlPort);
  const backing = join(stack.dir, 'cost.img');
  await run('truncate', ['-s', '1G', backing]);
  const iqn = 'iqn.2010-10.org.openstack:bench-cost';
  const conf = join(stack.dir, 'cost.conf');
  writeFileSync(
    conf,
    `<target ${iqn}>\n    backing-store ${backing}\n    incominguser BenchUser01 BenchSecret00001\n</target>\n`,
  );
  const control = new TgtdControl(stack.tgtd.controlPort);
  const adm = (...args: string[]) => run('tgtadm', ['-C', c, '--lld', 'iscsi', ...args]);
  const rounds = 5;
  const total = { tgtAdmin: 0, tgtadm: 0, socket: 0 };
  const timed = async (way: keyof typeof total, work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    total[way] += performance.now() - started;
  };
  for (let i = 0; i < rounds; i++) {
    await timed('tgtAdmin', () => run('tgt-admin', ['-C', c, '-c', conf, '--update', iqn]));
    await run('tgt-admin', ['-C', c, '--delete', iqn, '-f']);
    await adm('--op', 'delete', '--mode', 'account', '--user', 'BenchUser01');
    const tid = String(900 + i);
    await timed('tgtadm', async () => {
      await adm('--op', 'new', '--mode', 'target', '--tid', tid, '-T', iqn);
      await adm('--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '-b', backing);
      await adm(
        '--op',
        'new',
        '--mode',
        'account',
        '--user',
        'BenchUser01',
        '--password',
        'BenchSecret00001',
      );
      await adm('--op', 'bind', '--mode', 'account', '--tid', tid, '--user', 'BenchUser01');
    });
    await adm('--op', 'delete', '--force', '--mode', 'target', '--tid', tid);
    await adm('--op', 'delete', '--mode', 'account', '--user', 'BenchUser01');
    const n = 950 + i;
    await timed('socket', async () => {
      await control.request({ mode: TgtMode.target, op: TgtOp.new, tid: n, params: { targetname: iqn } });
      await control.request({
        mode: TgtMode.logicalunit,
        op: TgtOp.new,
        tid: n,
        lun: 1,
        params: { path: backing },
      });
      await control.request({
        mode: TgtMode.account,
        op: TgtOp.new,
        params: { user: 'BenchUser01', password: 'BenchSecret00001' },
      });
      await control.request({
        mode: TgtMode.account,
        op: TgtOp.bind,
        tid: n,
        params: { user: 'BenchUser01' },
      });
    });
    await adm('--op', 'delete', '--force', '--mode', 'target', '--tid', String(n));
    await adm('--op', 'delete', '--mode', 'account', '--user', 'BenchUser01');
  }
  return { tgtAdmin: total.tgtAdmin / rounds, tgtadm: total.tgtadm / rounds, socket: total.socket / rounds };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
