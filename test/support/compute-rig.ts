import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { instanceName } from '@basalt/db';
import type { Fault, Outage } from './fault-rig';
import { GuestConsole } from './guest';
import { passwordToken, request } from './http';
import { PrivateRabbitMq } from './private-rabbitmq';
import { waitFor } from './rpc';
import { VolumeStack } from './stack';
import { killed, rabbitRestart, tgtdRestart } from './volume-faults';

/** Seconds after the fault ends within which every attach and detach has settled. */
export const COMPUTE_RECOVERY_BOUND_SEC = 30;
const TRANSITIONAL = ['attaching', 'detaching'];

/** What one burst of attaches or detaches under a fault came to. */
export interface ComputeRoundReport {
  readonly fault: string;
  readonly phase: 'attach' | 'detach';
  readonly outageMs: number;
  /** From the fault's end until no volume of the round was attaching or detaching (or the bound passed). */
  readonly recoveryMs: number;
  /** Requests the API refused (503, or no answer), each retried. */
  readonly refused: number;
  /** Attaches taken but rolled back (the volume `available` again, nothing of it left). */
  readonly rolledBack: number;
  readonly errors: number;
  /** Volumes still attaching or detaching when the bound passed. */
  readonly stuck: number;
  /** Volumes whose state disagrees with their mappings (in-use without an attached one, or the reverse). */
  readonly inconsistent: number;
}

/** Every fault of the compute side, in the order the benchmark runs them. */
export const COMPUTE_FAULTS: readonly Fault<ComputeRig>[] = [
  killed('compute-worker'),
  killed('volume-worker'),
  rabbitRestart,
  tgtdRestart,
];

/**
 * A compute stack on a RabbitMQ node of its own (restartable without disturbing anyone) with one
 * guest, booted once: each round attaches a set of volumes to it one after another, as one user
 * does, then detaches them, the fault striking halfway through each burst.
 */
export class ComputeRig {
  stack!: VolumeStack;
  rabbit!: PrivateRabbitMq;
  private token = '';
  private project = '';
  private server = '';
  private refused = 0;
  private round = 0;

  async start(): Promise<void> {
    this.rabbit = await PrivateRabbitMq.start();
    this.stack = new VolumeStack({
      authStrategy: 'builtin',
      compute: true,
      brokerUrl: this.rabbit.url,
      extraEnv: {
        BASALT__DEFAULT__RESUME_STALLED_AFTER: '2',
        BASALT__QUOTA__VOLUMES: '-1',
        BASALT__QUOTA__GIGABYTES: '-1',
        BASALT__RABBIT__RECONNECT_DELAY_MAX: '1',
        BASALT__RABBIT__CONNECT_RETRIES: '20',
      },
    });
    await this.stack.start();
    ({ token: this.token, projectId: this.project } = await passwordToken(
      this.stack.identityUrl,
      'alice',
      'alicepass',
      'demo',
    ));
    const created = await this.compute('POST', '/servers', {
      server: { name: 'rig', flavorRef: '1', imageRef: this.stack.imageId, networks: 'none' },
    });
    this.server = created.body.server.id;
    await waitFor(
      async () =>
        (await this.compute('GET', `/servers/${this.server}`)).body.server?.status === 'ACTIVE' || undefined,
      'the rig guest ACTIVE',
      180_000,
    );
    // a guest still booting does not answer a hot-unplug: the detaches would time its boot instead
    const [row] = await this.stack.query<{ seq: number }>('SELECT seq FROM instances WHERE id = $1', [
      this.server,
    ]);
    const name = instanceName(this.stack.instanceNameTemplate(), Number(row?.seq));
    await new GuestConsole(join(this.stack.instancesPath, name, 'console.log')).waitFor(
      /BOOTED/,
      'the rig guest to boot',
      180_000,
    );
  }

  async stop(): Promise<void> {
    // BENCH_LOGS=DIR: the services' logs are kept there, the stack's folder goes
    const keep = process.env.BENCH_LOGS;
    if (keep && this.stack) {
      mkdirSync(keep, { recursive: true });
      for (const file of readdirSync(this.stack.dir).filter((f) => f.endsWith('.log')))
        cpSync(join(this.stack.dir, file), join(keep, file));
    }
    await this.stack?.stop().catch(() => undefined);
    await this.rabbit?.stop();
  }

  /** `count` volumes attached one after another, then detached; `fault` strikes halfway through each. */
  async run(fault: Fault<ComputeRig>, count: number): Promise<ComputeRoundReport[]> {
    const prefix = `c${this.round++}-`;
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await this.createVolume(`${prefix}${i}`));
    const attached = await this.burst(fault, ids, (id) =>
      this.untilTaken(() =>
        this.compute('POST', `/servers/${this.server}/os-volume_attachments`, {
          volumeAttachment: { volumeId: id },
        }),
      ),
    );
    const attachReport = await this.report(fault, 'attach', ids, attached);
    const inUse = (await this.statuses(ids)).filter((v) => v.status === 'in-use').map((v) => v.id);
    const detached = await this.burst(fault, inUse, (id) =>
      this.untilTaken(() => this.compute('DELETE', `/servers/${this.server}/os-volume_attachments/${id}`)),
    );
    return [attachReport, await this.report(fault, 'detach', inUse, detached)];
  }

  private async burst(
    fault: Fault<ComputeRig>,
    ids: readonly string[],
    op: (id: string) => Promise<void>,
  ): Promise<{ outage: Outage; refused: number; settledAt: number }> {
    this.refused = 0;
    let outage: Promise<Outage> | undefined;
    for (const [i, id] of ids.entries()) {
      if (!outage && i >= ids.length / 2) {
        outage = fault.inject(this);
        outage.catch(() => undefined);
      }
      await op(id);
    }
    const done = await (outage ?? fault.inject(this));
    return { outage: done, refused: this.refused, settledAt: await this.settle(ids, done.backAt) };
  }

  private async settle(ids: readonly string[], backAt: number): Promise<number> {
    const deadline = backAt + COMPUTE_RECOVERY_BOUND_SEC * 1000;
    for (;;) {
      const moving = (await this.statuses(ids)).filter((v) => TRANSITIONAL.includes(v.status));
      if (moving.length === 0 || Date.now() > deadline) return Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async report(
    fault: Fault<ComputeRig>,
    phase: 'attach' | 'detach',
    ids: readonly string[],
    burst: { outage: Outage; refused: number; settledAt: number },
  ): Promise<ComputeRoundReport> {
    const rows = await this.statuses(ids);
    return {
      fault: fault.name,
      phase,
      outageMs: burst.outage.backAt - burst.outage.downAt,
      recoveryMs: Math.max(0, burst.settledAt - burst.outage.backAt),
      refused: burst.refused,
      rolledBack: phase === 'attach' ? rows.filter((r) => r.status === 'available').length : 0,
      errors: rows.filter((r) => r.status.startsWith('error')).length,
      stuck: rows.filter((r) => TRANSITIONAL.includes(r.status)).length,
      inconsistent: rows.filter((r) => (r.status === 'in-use') !== (r.mapping === 'attached')).length,
    };
  }

  /** Each volume's status and its live mapping's, from the database. */
  private statuses(ids: readonly string[]) {
    return this.stack.query<{ id: string; status: string; mapping: string | null }>(
      `SELECT v.id, v.status, m.status AS mapping FROM volumes v
         LEFT JOIN block_device_mappings m ON m.volume_id = v.id AND NOT m.deleted
        WHERE v.id = ANY($1)`,
      [ids],
    );
  }

  private async createVolume(name: string): Promise<string> {
    const url = `${this.stack.volumeUrl}/v3/${this.project}/volumes`;
    const created = await request(url, {
      method: 'POST',
      token: this.token,
      body: { volume: { size: 1, name } },
    });
    if (created.status !== 202)
      throw new Error(`create ${name} answered ${created.status}: ${JSON.stringify(created.body)}`);
    const id = created.body.volume.id as string;
    await waitFor(
      async () =>
        (await request(`${url}/${id}`, { token: this.token })).body.volume?.status === 'available' ||
        undefined,
      `volume ${name} available`,
      30_000,
    );
    return id;
  }

  private compute(method: string, path: string, body?: unknown) {
    return request(`${this.stack.computeUrl}/v2.1${path}`, {
      method,
      token: this.token,
      ...(body === undefined ? {} : { body }),
    });
  }

  /** Sent until the API takes it (a 503 or no answer is retried after a moment); any other refusal is final. */
  private async untilTaken(send: () => Promise<{ status: number }>): Promise<void> {
    for (;;) {
      const answer = await send().catch(() => ({ status: 0 }));
      if (answer.status === 0 || answer.status === 503) {
        this.refused++;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      return;
    }
  }
}
