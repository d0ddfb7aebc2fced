/**
 * npm run bench:faults — each volume-side fault in the middle of a burst of 200 creates and again
 * of 200 deletes from 16 clients, on a stack whose PostgreSQL and RabbitMQ are its own: how long
 * the outage lasted, how long until every volume had settled after it, how many requests the API
 * refused meanwhile, how many volumes ended in error, and how many were still in transit when the
 * bound passed (the target is 0 for both).
 */
import { FaultRig, RECOVERY_BOUND_SEC, type RoundReport } from '../support/fault-rig';
import { VOLUME_FAULTS } from '../support/volume-faults';

const BURST = Number(process.env.BENCH_VOLUMES ?? 200);
const ONLY = process.env.BENCH_FAULT;

async function main() {
  const rig = new FaultRig();
  const reports: RoundReport[] = [];
  try {
    await rig.start();
    for (const fault of VOLUME_FAULTS.filter((f) => !ONLY || f.name.includes(ONLY))) {
      reports.push(...(await rig.run(fault, BURST)));
    }
  } finally {
    await rig.stop();
  }
  console.log(
    `bench:faults — ${BURST} creates then ${BURST} deletes per fault, 16 clients; bound ${RECOVERY_BOUND_SEC} s after the fault ends`,
  );
  const header = [
    'fault',
    'burst',
    'in transit',
    'outage s',
    'recovery s',
    'refused',
    'error',
    'stuck',
    'leftovers',
  ];
  const rows = reports.map((r) => [
    r.fault,
    r.phase,
    String(r.inTransitAtFault),
    (r.outageMs / 1000).toFixed(2),
    (r.recoveryMs / 1000).toFixed(2),
    String(r.refused),
    String(r.errors.length),
    String(r.stuck.length),
    String(Object.values(r.audit).reduce((n, list) => n + list.length, 0)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  for (const row of [header, ...rows])
    console.log(row.map((c, i) => c.padEnd(widths[i] as number)).join('  '));
  for (const r of reports.filter((r) => r.errors.length > 0 || r.stuck.length > 0)) {
    console.log(
      `${r.fault} (${r.phase}):`,
      JSON.stringify({ errors: r.errors.slice(0, 3), stuck: r.stuck.slice(0, 3) }),
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
