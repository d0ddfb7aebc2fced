import type { IncomingHttpHeaders } from 'node:http';
import { createDataSource, type DataSource, isTransientDatabaseError } from '@basalt/db';
import { type AuditFindings, auditHost, isClean } from './backend-audit';
import { LoadClient } from './load';
import { freePort } from './ports';
import { PrivatePostgres } from './private-postgres';
import { PrivateRabbitMq } from './private-rabbitmq';
import { VolumeStack } from './stack';

/** Seconds after the fault ends (the process or dependency is back) within which every volume settles. */
export const RECOVERY_BOUND_SEC = 30;
/** The sweep's settings under test: with them, the bound above holds with room to spare. */
const RESUME_STALLED_AFTER_SEC = 2;

const TRANSITIONAL = ['creating', 'deleting', 'extending', 'attaching', 'detaching'];
const PROJECT = 'faults';

/** When a fault began, when what it broke was back, and what was seen meanwhile. */
export interface Outage {
  readonly downAt: number;
  readonly backAt: number;
  /** Answers the API gave to a probe while the dependency was away (PostgreSQL faults). */
  readonly probes?: readonly { status: number; retryAfter: string | undefined }[];
}

/**
 * One thing that goes wrong on purpose: a process killed, a dependency restarted or away, on the
 * rig it is given (this one, or the compute side's).
 */
export interface Fault<Rig = FaultRig> {
  readonly name: string;
  inject(rig: Rig): Promise<Outage>;
}

/** What one burst under a fault came to. */
export interface RoundReport {
  readonly fault: string;
  readonly phase: 'create' | 'delete';
  readonly outageMs: number;
  /** From the fault's end until no volume of the round was in transit (or the bound passed). */
  readonly recoveryMs: number;
  /** Requests the API refused (503, or no answer at all), each retried by its client. */
  readonly refused: number;
  /** Volumes in a transitional state when the fault struck. */
  readonly inTransitAtFault: number;
  /** Volumes of the round in error. */
  readonly errors: readonly { name: string; status: string; reason: string | null }[];
  /** Volumes still in a transitional state when the bound passed. */
  readonly stuck: readonly { name: string; status: string }[];
  /** Names with more than one live volume. */
  readonly duplicates: readonly string[];
  /** Requests accepted whose volume did not end where they asked. */
  readonly wrongEnd: readonly { name: string; status: string }[];
  readonly audit: AuditFindings;
  readonly probes: readonly { status: number; retryAfter: string | undefined }[];
}

/**
 * A volume stack on a PostgreSQL server and a RabbitMQ node of its own (so both can be restarted
 * without disturbing anyone else on the machine), with a fixed API port (so clients find a
 * restarted API), and clients that behave as a careful user does: a refused request is retried
 * after the time the API asked for, and a request whose answer was lost is looked up by name
 * before it is sent again.
 */
export class FaultRig {
  stack!: VolumeStack;
  postgres!: PrivatePostgres;
  rabbit!: PrivateRabbitMq;
  db!: DataSource;
  private load!: LoadClient;
  private api = '';
  private refused = 0;
  private round = 0;

  constructor(private readonly clients = 16) {}

  async start(): Promise<void> {
    [this.postgres, this.rabbit] = await Promise.all([PrivatePostgres.start(), PrivateRabbitMq.start()]);
    this.stack = new VolumeStack({
      postgresUrl: this.postgres.url,
      brokerUrl: this.rabbit.url,
      extraEnv: {
        BASALT__API__OSAPI_VOLUME_LISTEN_PORT: String(await freePort()),
        BASALT__QUOTA__VOLUMES: '-1',
        BASALT__QUOTA__GIGABYTES: '-1',
        // bursts under one token: the rig measures faults, not the rate limit
        BASALT__API__RATE_LIMIT: '0',
        // sparse files: promise far more than the disk holds
        BASALT__VOLUME__MAX_OVER_SUBSCRIPTION_RATIO: '1000',
        BASALT__DEFAULT__RESUME_STALLED_AFTER: String(RESUME_STALLED_AFTER_SEC),
        // capability reports at the production interval: a restarted scheduler must not need them sooner
        BASALT__VOLUME__REPORT_CAPABILITIES_INTERVAL: '10',
        BASALT__RABBIT__RECONNECT_DELAY_MAX: '1',
        BASALT__DATABASE__CONNECT_RETRIES: '10',
        BASALT__RABBIT__CONNECT_RETRIES: '20',
      },
    });
    await this.stack.start();
    this.api = `${this.stack.volumeUrl}/v3/${PROJECT}`;
    this.load = new LoadClient(this.clients, `${PROJECT}:${PROJECT}`);
    this.db = createDataSource({ url: this.stack.database.url, poolSize: 2 });
    await this.db.initialize();
  }

  async stop(): Promise<void> {
    this.load?.close();
    await this.db?.destroy().catch(() => undefined);
    await this.stack?.stop().catch(() => undefined);
    await Promise.all([this.postgres?.stop(), this.rabbit?.stop()]);
  }

  /** The API's answer to a list request, for probes during an outage. */
  async probe(): Promise<{ status: number; retryAfter: string | undefined }> {
    const r = await this.load.send('GET', `${this.api}/volumes`).catch(() => ({ status: 0, headers: {} }));
    const retryAfter = (r.headers as Record<string, string | undefined>)['retry-after'];
    return { status: r.status, retryAfter };
  }

  /**
   * `count` creates from the clients, then `count` deletes of what they made; `fault` strikes in
   * the middle of each burst. Returns what each burst came to.
   */
  async run(fault: Fault, count: number): Promise<RoundReport[]> {
    const prefix = `r${this.round++}-`;
    const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    const created = await this.burst(fault, count, async (i) => {
      await this.createOne(names[i] as string);
    });
    const createReport = await this.report(fault, 'create', prefix, created, 'available');
    const ids: string[] = (
      await this.query('SELECT id FROM volumes WHERE display_name LIKE $1 AND NOT deleted', [`${prefix}%`])
    ).map((r: { id: string }) => r.id);
    const deleted = await this.burst(fault, ids.length, async (i) => {
      await this.deleteOne(ids[i] as string);
    });
    return [createReport, await this.report(fault, 'delete', prefix, deleted, 'deleted')];
  }

  private async burst(
    fault: Fault,
    count: number,
    op: (i: number) => Promise<void>,
  ): Promise<{ outage: Outage; refused: number; settledAt: number; inTransit: number }> {
    this.refused = 0;
    let sent = 0;
    let outage: Promise<[number, Outage]> | undefined;
    // the fault strikes once half the burst is on its way, with work queued at every stage
    await this.load.inParallel(count, async (i) => {
      sent++;
      if (!outage && sent >= count / 2) {
        outage = this.inTransit().then(async (n) => [n, await fault.inject(this)] as [number, Outage]);
        // awaited once the burst is sent; a failure meanwhile must not end the process before cleanup
        outage.catch(() => undefined);
      }
      await op(i);
    });
    const [inTransit, done] = await (outage as Promise<[number, Outage]>);
    return { outage: done, refused: this.refused, settledAt: await this.settle(done.backAt), inTransit };
  }

  /** The rig's own reads: its pooled connections die with a PostgreSQL restart too, so it retries. */
  async query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.query(sql, params);
      } catch (error) {
        if (attempt >= 20 || !isTransientDatabaseError(error)) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private async inTransit(): Promise<number> {
    const [row] = await this.query(
      'SELECT count(*)::int AS n FROM volumes WHERE NOT deleted AND status = ANY($1)',
      [TRANSITIONAL],
    );
    return row.n;
  }

  /** Waits until no volume is in transit, at most until the bound after `backAt`; when it was so. */
  private async settle(backAt: number): Promise<number> {
    const deadline = backAt + RECOVERY_BOUND_SEC * 1000;
    for (;;) {
      if ((await this.inTransit()) === 0 || Date.now() > deadline) return Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async report(
    fault: Fault,
    phase: 'create' | 'delete',
    prefix: string,
    burst: { outage: Outage; refused: number; settledAt: number; inTransit: number },
    expected: 'available' | 'deleted',
  ): Promise<RoundReport> {
    const rows: { name: string; status: string; reason: string | null; deleted: boolean }[] =
      await this.query(
        `SELECT display_name AS name, status, status_reason AS reason, deleted FROM volumes WHERE display_name LIKE $1`,
        [`${prefix}%`],
      );
    const live = rows.filter((r) => !r.deleted);
    const perName = new Map<string, number>();
    for (const r of live) perName.set(r.name, (perName.get(r.name) ?? 0) + 1);
    // the phase's own end: after the creates every volume available, after the deletes none left
    const wrongEnd =
      expected === 'available'
        ? live.filter((r) => r.status !== 'available')
        : live.map((r) => ({ name: r.name, status: r.status }));
    return {
      fault: fault.name,
      phase,
      outageMs: burst.outage.backAt - burst.outage.downAt,
      recoveryMs: Math.max(0, burst.settledAt - burst.outage.backAt),
      refused: burst.refused,
      inTransitAtFault: burst.inTransit,
      errors: live.filter((r) => r.status.startsWith('error')),
      stuck: live
        .filter((r) => TRANSITIONAL.includes(r.status))
        .map((r) => ({ name: r.name, status: r.status })),
      duplicates: [...perName].filter(([, n]) => n > 1).map(([name]) => name),
      wrongEnd: wrongEnd.map((r) => ({ name: r.name, status: r.status })),
      audit: await this.audit(),
      probes: burst.outage.probes ?? [],
    };
  }

  /**
   * The host compared with the database; a restarted tgtd gets its exports back within the
   * worker's export check, so the audit is repeated for a few seconds until it is clean.
   */
  private async audit(): Promise<AuditFindings> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const findings = await auditHost(this, this.stack.host, this.stack, this.stack.tgtd);
      if (isClean(findings) || Date.now() > deadline) return findings;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** One user's create; when its answer was lost, the volume is looked up by name. */
  private createOne(name: string): Promise<void> {
    return this.untilTaken(
      `create ${name}`,
      () => this.load.send('POST', `${this.api}/volumes`, { volume: { size: 1, name } }),
      (r) => r.status === 202,
      () => this.exists(name),
    );
  }

  /** One user's delete; a volume already deleting (an earlier try got through) or gone counts as taken. */
  private deleteOne(id: string): Promise<void> {
    return this.untilTaken(
      `delete ${id}`,
      () => this.load.send('DELETE', `${this.api}/volumes/${id}`),
      (r) =>
        r.status === 202 ||
        r.status === 404 ||
        (r.status === 400 && /current status is: deleting/.test(r.body)),
    );
  }

  /**
   * Sends a request until the API takes it, as a careful user does: a 503 is sent again after its
   * Retry-After; when the answer was lost, `gotThrough` (if given) says whether it was taken.
   */
  private async untilTaken(
    what: string,
    send: () => Promise<{ status: number; body: string; headers: IncomingHttpHeaders }>,
    taken: (r: { status: number; body: string }) => boolean,
    gotThrough?: () => Promise<boolean>,
  ): Promise<void> {
    for (;;) {
      let answer: { status: number; body: string; headers: IncomingHttpHeaders };
      try {
        answer = await send();
      } catch (error) {
        if (!isLostAnswer(error)) throw error;
        this.refused++;
        await pause();
        if (gotThrough && (await gotThrough())) return;
        continue;
      }
      if (taken(answer)) return;
      if (answer.status !== 503) throw new Error(`${what} answered ${answer.status}: ${answer.body}`);
      this.refused++;
      await pause(answer.headers['retry-after']);
    }
  }

  /** Whether a volume of that name exists (asked until the API answers). */
  private async exists(name: string): Promise<boolean> {
    for (;;) {
      try {
        const r = await this.load.send('GET', `${this.api}/volumes?name=${encodeURIComponent(name)}`);
        if (r.status === 200) return JSON.parse(r.body).volumes.length > 0;
      } catch (error) {
        if (!isLostAnswer(error)) throw error;
      }
      await pause();
    }
  }
}

/** The connection failed or broke before an answer came: the API was down or went down. */
function isLostAnswer(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    /socket hang up/.test(String(error))
  );
}

/** Waits what a 503 asked for (Retry-After, seconds), or a moment. */
function pause(retryAfter?: string | string[]): Promise<void> {
  const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return new Promise((r) => setTimeout(r, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 200));
}
