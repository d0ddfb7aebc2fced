/**
 * npm run bench:volumes — the file backend with real tgt exports, api + scheduler + volume-worker
 * as separate processes: 200 volumes created by 16 concurrent clients, then deleted. Also what each
 * way of changing a live tgt target costs, measured in the same run.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDataSource } from '@basalt/db';
import { request } from '../support/http';
import { VolumeStack } from '../support/stack';
import { percentile } from './stats';

const run = promisify(execFile);
const VOLUMES = Number(process.env.BENCH_VOLUMES ?? 200);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);

async function inParallel(total: number, clients: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) await op(next++);
    }),
  );
}

async function main() {
  // sparse files: promise up to 20x the disk, so 200 volumes fit on a small test disk
  const stack = new VolumeStack({
    extraEnv: {
      BASALT__QUOTA__VOLUMES: '-1',
      BASALT__VOLUME__MAX_OVER_SUBSCRIPTION_RATIO: '20',
      // production intervals, not the tests' fast ones
      BASALT__DEFAULT__REPORT_INTERVAL: '10',
      BASALT__VOLUME__REPORT_CAPABILITIES_INTERVAL: '10',
    },
  });
  // stop the stack whatever happens, so no process, tgtd or database outlives the run
  try {
    await stack.start();
  } catch (error) {
    await stack.stop();
    throw error;
  }
  const db = createDataSource({ url: stack.database.url, poolSize: 2 });
  await db.initialize();
  try {
    const api = `${stack.volumeUrl}/v3/bench`;
    const token = 'bench:bench';
    // one query per poll: the poller shares the machine with what it measures
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
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    const started = performance.now();
    await inParallel(VOLUMES, CLIENTS, async (i) => {
      const res = await request(`${api}/volumes`, {
        method: 'POST',
        token,
        body: { volume: { size: 1, name: `b${i}` } },
      });
      if (res.status !== 202) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
    });
    await waitUntil((c) => (c.available ?? 0) >= VOLUMES);
    const createSeconds = (performance.now() - started) / 1000;
    const latencies: number[] = (
      await db.query(
        "SELECT extract(epoch FROM launched_at - created_at) * 1000 AS ms FROM volumes WHERE status = 'available'",
      )
    )
      .map((r: { ms: string }) => Number(r.ms))
      .sort((a: number, b: number) => a - b);

    const ids: string[] = (await db.query("SELECT id FROM volumes WHERE status = 'available'")).map(
      (r: { id: string }) => r.id,
    );
    const deleteStarted = performance.now();
    await inParallel(ids.length, CLIENTS, async (i) => {
      const res = await request(`${api}/volumes/${ids[i]}`, { method: 'DELETE', token });
      if (res.status !== 202) throw new Error(`delete failed: ${JSON.stringify(res.body)}`);
    });
    await waitUntil((c) => (c.deleted ?? 0) >= VOLUMES);
    const deleteSeconds = (performance.now() - deleteStarted) / 1000;
    const leftover = (await stack.tgtd.targets()).trim();

    console.log(`bench:volumes — ${VOLUMES} volumes, ${CLIENTS} concurrent clients, file backend, real tgtd`);
    console.log(
      `create: all available in ${createSeconds.toFixed(2)} s = ${(VOLUMES / createSeconds).toFixed(1)} volumes/s (target >= 33)`,
    );
    console.log(
      `create→available: p50 ${percentile(latencies, 50).toFixed(0)} ms (target <= 50), p90 ${percentile(latencies, 90).toFixed(0)} ms, max ${percentile(latencies, 100).toFixed(0)} ms`,
    );
    console.log(
      `delete: all gone in ${deleteSeconds.toFixed(2)} s = ${(VOLUMES / deleteSeconds).toFixed(1)} volumes/s; targets left: ${leftover === '' ? 0 : leftover.split('\n').filter((l) => l.startsWith('Target')).length}`,
    );
    const costs = await targetChangeCosts(stack);
    console.log(
      `changing a live target: tgt-admin --update ${costs.tgtAdmin.toFixed(1)} ms vs the tgtadm calls of one export ${costs.tgtadm.toFixed(1)} ms (ratio ${(costs.tgtAdmin / costs.tgtadm).toFixed(1)}x); the hot path uses tgtadm`,
    );
  } finally {
    await db.destroy();
    await stack.stop();
  }
}

/** Wall time of one export made by tgt-admin from a config file, against the same export made with tgtadm. */
async function targetChangeCosts(stack: VolumeStack): Promise<{ tgtAdmin: number; tgtadm: number }> {
  const c = String(stack.tgtd.controlPort);
  const backing = join(stack.dir, 'cost.img');
  await run('truncate', ['-s', '1G', backing]);
  const iqn = 'iqn.2010-10.org.openstack:bench-cost';
  const conf = join(stack.dir, 'cost.conf');
  writeFileSync(
    conf,
    `<target ${iqn}>\n    backing-store ${backing}\n    incominguser BenchUser01 BenchSecret00001\n</target>\n`,
  );
  const rounds = 5;
  let tgtAdmin = 0;
  let tgtadm = 0;
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await run('tgt-admin', ['-C', c, '-c', conf, '--update', iqn]);
    tgtAdmin += performance.now() - t;
    await run('tgt-admin', ['-C', c, '--delete', iqn, '-f']);
    const tid = String(900 + i);
    t = performance.now();
    const adm = (...args: string[]) => run('tgtadm', ['-C', c, '--lld', 'iscsi', ...args]);
    await adm('--op', 'new', '--mode', 'target', '--tid', tid, '-T', iqn);
    await adm('--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '-b', backing);
    await adm(
      '--op',
      'new',
      '--mode',
      'account',
      '--user',
      `BenchAdm0${i}`,
      '--password',
      'BenchSecret00001',
    );
    await adm('--op', 'bind', '--mode', 'account', '--tid', tid, '--user', `BenchAdm0${i}`);
    tgtadm += performance.now() - t;
    await adm('--op', 'delete', '--force', '--mode', 'target', '--tid', tid);
    await adm('--op', 'delete', '--mode', 'account', '--user', `BenchAdm0${i}`);
  }
  await run('tgtadm', [
    '-C',
    c,
    '--lld',
    'iscsi',
    '--op',
    'delete',
    '--mode',
    'account',
    '--user',
    'BenchUser01',
  ]);
  return { tgtAdmin: tgtAdmin / rounds, tgtadm: tgtadm / rounds };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
