import type { Fault, Outage } from './fault-rig';
import type { ServiceName } from './processes';

/** How long PostgreSQL stays away in the long outage: past the handlers' retries (0.25 + 0.5 + 1 s). */
const POSTGRES_AWAY_MS = 6_000;

/** kill -9 of one process, restarted at once: what it had in flight is redelivered or resumed. */
const killed = (name: ServiceName): Fault => ({
  name: `kill -9 ${name}`,
  async inject(rig) {
    const downAt = Date.now();
    await rig.stack.service(name).kill();
    await rig.stack.startService(name);
    return { downAt, backAt: Date.now() };
  },
});

/** PostgreSQL stopped (fast shutdown: every session ends) for `awayMs`, then started again. */
const postgresAway = (name: string, awayMs: number): Fault => ({
  name,
  async inject(rig): Promise<Outage> {
    const downAt = Date.now();
    await rig.postgres.stopServer();
    const probes = [];
    const until = downAt + awayMs;
    do {
      probes.push(await rig.probe());
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(500, until - Date.now()))));
    } while (Date.now() < until);
    await rig.postgres.startServer();
    return { downAt, backAt: Date.now(), probes };
  },
});

/** Every fault of the volume side, in the order the suite runs them. */
export const VOLUME_FAULTS: readonly Fault[] = [
  killed('api'),
  killed('scheduler'),
  killed('volume-worker'),
  {
    name: 'RabbitMQ restart',
    async inject(rig) {
      const downAt = Date.now();
      await rig.rabbit.stopNode();
      await rig.rabbit.startNode();
      return { downAt, backAt: Date.now() };
    },
  },
  postgresAway('PostgreSQL restart', 0),
  postgresAway(`PostgreSQL away ${POSTGRES_AWAY_MS / 1000} s`, POSTGRES_AWAY_MS),
  {
    name: 'tgtd restart',
    async inject(rig) {
      const downAt = Date.now();
      await rig.stack.tgtd.crashAndRestart();
      return { downAt, backAt: Date.now() };
    },
  },
];
