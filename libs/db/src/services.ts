import type { DataSource } from 'typeorm';

export interface ServiceIdentity {
  readonly host: string;
  readonly binary: string;
  readonly topic: string;
  readonly availabilityZone: string;
}

/** Registers a process (or finds its row after a restart) and returns the row id. */
export async function registerService(ds: DataSource, identity: ServiceIdentity): Promise<number> {
  const rows: Array<{ id: number }> = await ds.query(
    `INSERT INTO services (host, "binary", topic, availability_zone, last_heartbeat_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (host, "binary") DO UPDATE
       SET topic = EXCLUDED.topic, availability_zone = EXCLUDED.availability_zone,
           last_heartbeat_at = now(), updated_at = now()
     RETURNING id`,
    [identity.host, identity.binary, identity.topic, identity.availabilityZone],
  );
  const row = rows[0];
  if (!row) throw new Error('services upsert returned no row');
  return row.id;
}

export async function heartbeat(ds: DataSource, serviceId: number): Promise<void> {
  await ds.query(
    'UPDATE services SET report_count = report_count + 1, last_heartbeat_at = now(), updated_at = now() WHERE id = $1',
    [serviceId],
  );
}

export interface ServiceStatus {
  readonly id: number;
  readonly uuid: string;
  readonly host: string;
  readonly binary: string;
  readonly topic: string;
  readonly availabilityZone: string;
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  readonly up: boolean;
  readonly lastHeartbeatAt: Date;
}

/** Every service with whether it is up: a heartbeat within `downAfterSec`, judged by the database clock. */
export async function listServices(ds: DataSource, downAfterSec: number): Promise<ServiceStatus[]> {
  const rows: Array<Record<string, unknown>> = await ds.query(
    `SELECT id, uuid, host, "binary", topic, availability_zone, disabled, disabled_reason, last_heartbeat_at,
            last_heartbeat_at > now() - make_interval(secs => $1) AS up
       FROM services ORDER BY "binary", host`,
    [downAfterSec],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    uuid: String(r.uuid),
    host: String(r.host),
    binary: String(r.binary),
    topic: String(r.topic),
    availabilityZone: String(r.availability_zone),
    disabled: r.disabled === true,
    disabledReason: (r.disabled_reason as string | null) ?? null,
    up: r.up === true,
    lastHeartbeatAt: new Date(String(r.last_heartbeat_at)),
  }));
}

/**
 * An operator's enable or disable (Cinder's os-services): a disabled volume service gets no new
 * volumes. Answers whether there is such a service.
 */
export async function setServiceDisabled(
  ds: DataSource,
  host: string,
  binary: string,
  disabled: boolean,
  reason: string | null,
): Promise<boolean> {
  const [, count] = await ds.query(
    `UPDATE services SET disabled = $3, disabled_reason = $4, updated_at = now()
      WHERE host = $1 AND "binary" = $2`,
    [host, binary, disabled, reason],
  );
  return Number(count) > 0;
}

/** A host's last report as stored, and how old it is by the database's clock. */
export interface StoredReport<T> {
  readonly host: string;
  readonly capabilities: T;
  readonly ageMs: number;
}

/**
 * `listServices`, remembered for `ttlMs`: the table changes at the pace of heartbeats, not of
 * requests, so a burst of creates need not read it once each.
 */
export class ServiceDirectory {
  private cached?: { at: number; services: Promise<ServiceStatus[]> };

  constructor(
    private readonly ds: DataSource,
    private readonly downAfterSec: number,
    private readonly ttlMs = 1000,
  ) {}

  list(now = Date.now()): Promise<ServiceStatus[]> {
    if (!this.cached || now - this.cached.at > this.ttlMs) {
      const services = listServices(this.ds, this.downAfterSec);
      this.cached = { at: now, services };
      services.catch(() => {
        if (this.cached?.services === services) this.cached = undefined;
      });
    }
    return this.cached.services;
  }

  /** The table as it is now, for an operator's view. */
  current(): Promise<ServiceStatus[]> {
    return listServices(this.ds, this.downAfterSec);
  }

  /** Keeps the host's latest report of what it has, for a scheduler that starts later. */
  async recordCapabilities(host: string, binary: string, capabilities: object): Promise<void> {
    await this.ds.query(
      `UPDATE services SET capabilities = $3, capabilities_at = now() WHERE host = $1 AND "binary" = $2`,
      [host, binary, JSON.stringify(capabilities)],
    );
  }

  /** The last report of every service of `binary` that made one. */
  async lastReports<T>(binary: string): Promise<StoredReport<T>[]> {
    const rows: Array<{ host: string; capabilities: T; age_ms: number }> = await this.ds.query(
      `SELECT host, capabilities, (extract(epoch FROM now() - capabilities_at) * 1000)::float8 AS age_ms
         FROM services WHERE "binary" = $1 AND capabilities IS NOT NULL`,
      [binary],
    );
    return rows.map((r) => ({ host: r.host, capabilities: r.capabilities, ageMs: Number(r.age_ms) }));
  }

  async setDisabled(
    host: string,
    binary: string,
    disabled: boolean,
    reason: string | null,
  ): Promise<boolean> {
    this.cached = undefined;
    return setServiceDisabled(this.ds, host, binary, disabled, reason);
  }
}
