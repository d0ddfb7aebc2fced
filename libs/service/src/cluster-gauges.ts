import { countByStatus, type DataSource, heartbeatAges } from '@basalt/db';
import { collectedGauge } from '@basalt/trace';

/**
 * Gauges of the whole deployment, read from the database when scraped: volumes and instances by
 * status, the age of each service's heartbeat. One process reports them (the scheduler), so a
 * sum over processes counts each volume once.
 */
export function registerClusterGauges(db: DataSource): void {
  collectedGauge(
    'basalt_resources_by_status',
    'Live volumes and instances by status.',
    ['resource', 'status'],
    async (set) => {
      for (const c of await countByStatus(db)) set({ resource: c.table, status: c.status }, c.count);
    },
  );
  collectedGauge(
    'basalt_service_heartbeat_age_seconds',
    "Seconds since each service's last heartbeat.",
    ['host', 'binary'],
    async (set) => {
      for (const s of await heartbeatAges(db)) set({ host: s.host, binary: s.binary }, s.ageSec);
    },
  );
}
