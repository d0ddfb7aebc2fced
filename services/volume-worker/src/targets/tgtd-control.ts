import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { endianness } from 'node:os';
import { BasaltError } from '@basalt/errors';
import { SpanKind, SpanStatusCode, withSpan } from '@basalt/trace';

/**
 * tgtd's management protocol, the one `tgtadm` speaks: a fixed request header, a `key=value,…`
 * parameter string, and an answer of an error code plus text, over the unix socket
 * `/var/run/tgtd/socket.<control port>`, one request per connection. Speaking it directly costs
 * tgtd's own work and one local round trip; each `tgtadm` run is a process besides (`npm run
 * bench:volumes` times both), the cost that bounded how fast volumes could be exported.
 *
 * The layout is tgt's `struct tgtadm_req` since 1.0.3x (checked byte for byte against what
 * tgtadm 1.0.85 sends); `probe()` refuses a tgtd that does not read it the same way.
 */
export const TgtMode = {
  system: 0,
  target: 1,
  logicalunit: 2,
  account: 7,
} as const;

export const TgtOp = {
  new: 0,
  delete: 1,
  show: 2,
  bind: 3,
  unbind: 4,
} as const;

const MODE_NAMES = Object.fromEntries(Object.entries(TgtMode).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;
const OP_NAMES = Object.fromEntries(Object.entries(TgtOp).map(([k, v]) => [v, k])) as Record<number, string>;

/** The answers (tgt's `enum tgtadm_errno`) callers act on. */
export const TgtErrno = {
  success: 0,
  noTarget: 4,
  noLun: 5,
  targetExists: 9,
  lunExists: 10,
  aclExists: 12,
  aclNotFound: 13,
  accountExists: 14,
  noAccount: 15,
  invalidRequest: 17,
} as const;

const MESSAGES: Record<number, string> = {
  1: 'unknown error',
  2: 'out of memory',
  3: "can't find the driver",
  4: "can't find the target",
  5: "can't find the logical unit",
  9: 'this target already exists',
  10: 'this logical unit number already exists',
  12: 'this access control rule already exists',
  13: 'this access control rule does not exist',
  14: 'this account already exists',
  15: "can't find the account",
  16: 'too many accounts',
  17: 'invalid request',
};

export const tgtdErrorMessage = (code: number) => MESSAGES[code] ?? `tgtd error ${code}`;

/**
 * tgtd is not answering (not running, restarting): not the volume's failure. The operation waits
 * in its transitional state for tgtd to come back instead of ending in `error`.
 */
export class TgtdUnavailableError extends BasaltError {
  constructor(message: string) {
    super(message, { retryable: true });
  }
}

export interface TgtdRequest {
  readonly mode: (typeof TgtMode)[keyof typeof TgtMode];
  readonly op: (typeof TgtOp)[keyof typeof TgtOp];
  readonly tid?: number;
  readonly lun?: number;
  readonly force?: boolean;
  readonly params?: Readonly<Record<string, string>>;
}

export interface TgtdAnswer {
  /** 0 on success, else a `TgtErrno`. */
  readonly code: number;
  /** What a show request prints (the same text as `tgtadm --op show`). */
  readonly text: string;
}

const HEADER = 120;
/**
 * tgtd answers management requests one at a time and its socket's backlog is short: a burst of
 * connections beyond it is refused (EAGAIN), so requests queue here instead.
 */
const MAX_IN_FLIGHT = 4;
const LLD = 'iscsi';
/** tgtd is on this host: its structs are in this host's byte order. */
const LE = endianness() === 'LE';
const NO_LUN = 0xffff_ffff_ffff_ffffn;

/** The request as tgtd reads it: header, then the NUL-terminated parameter string. */
export function encodeRequest(request: TgtdRequest): Buffer {
  const entries = Object.entries(request.params ?? {});
  for (const [key, value] of entries) {
    // a comma or NUL would end the value early and smuggle in another parameter
    if (/[,=\0]/.test(key) || /[,\0]/.test(value)) {
      throw new BasaltError(`tgtd parameter ${key} has a character tgtd cannot carry`);
    }
  }
  const params =
    entries.length > 0 ? Buffer.from(`${entries.map(([k, v]) => `${k}=${v}`).join(',')}\0`) : null;
  const header = Buffer.alloc(HEADER);
  const u32 = (value: number, offset: number) =>
    LE ? header.writeUInt32LE(value, offset) : header.writeUInt32BE(value, offset);
  u32(request.mode, 0);
  u32(request.op, 4);
  header.write(LLD, 8, 'ascii'); // char lld[64]
  u32(HEADER + (params?.length ?? 0), 72); // len
  if (LE) header.writeInt32LE(request.tid ?? -1, 76);
  else header.writeInt32BE(request.tid ?? -1, 76);
  // sid (80) stays 0; lun (88): ~0 means "none", as tgtadm sends it
  const lun = request.lun === undefined ? NO_LUN : BigInt(request.lun);
  if (LE) header.writeBigUInt64LE(lun, 88);
  else header.writeBigUInt64BE(lun, 88);
  // cid, host_no, device_type (disk), ac_dir (incoming), pack stay 0
  u32(request.force ? 1 : 0, 116);
  return params ? Buffer.concat([header, params]) : header;
}

/** One tgtd instance, addressed by its control port (`tgtd -C`, `tgtadm -C`). */
export class TgtdControl {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly controlPort: number,
    options: { readonly timeoutMs?: number; readonly socketPath?: string } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.socketPath = options.socketPath ?? `/var/run/tgtd/socket.${controlPort}`;
  }

  /** One request in a span: operation, target and the answer's code; parameter values stay out (they hold CHAP secrets). */
  request(request: TgtdRequest): Promise<TgtdAnswer> {
    const attributes = {
      'tgtd.control_port': this.controlPort,
      ...(request.tid === undefined ? {} : { 'tgtd.tid': request.tid }),
      ...(request.lun === undefined ? {} : { 'tgtd.lun': request.lun }),
      ...(request.params ? { 'tgtd.params': Object.keys(request.params) } : {}),
    };
    return withSpan(
      `tgtd ${OP_NAMES[request.op]} ${MODE_NAMES[request.mode]}`,
      { kind: SpanKind.CLIENT, attributes },
      async (span) => {
        const answer = await this.queued(request);
        span.setAttribute('tgtd.code', answer.code);
        if (answer.code !== TgtErrno.success) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: tgtdErrorMessage(answer.code) });
        }
        return answer;
      },
    );
  }

  private async queued(request: TgtdRequest): Promise<TgtdAnswer> {
    const body = encodeRequest(request);
    // a finished request hands its slot straight to the next waiting one
    if (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
    try {
      return await this.exchange(body);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private exchange(body: Buffer): Promise<TgtdAnswer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const settle = (error: Error | undefined, answer?: TgtdAnswer) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        if (error) reject(error);
        else resolve(answer as TgtdAnswer);
      };
      const socket = createConnection(this.socketPath);
      socket.setTimeout(this.timeoutMs, () =>
        settle(
          new TgtdUnavailableError(
            `tgtd (control port ${this.controlPort}) did not answer in ${this.timeoutMs} ms`,
          ),
        ),
      );
      socket.on('error', (error) =>
        settle(new TgtdUnavailableError(`cannot reach tgtd at ${this.socketPath}: ${error.message}`)),
      );
      socket.on('connect', () => socket.write(body));
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received < 8) return;
        const answer = Buffer.concat(chunks);
        const code = LE ? answer.readUInt32LE(0) : answer.readUInt32BE(0);
        const length = LE ? answer.readUInt32LE(4) : answer.readUInt32BE(4);
        if (received >= length) {
          settle(undefined, { code, text: answer.subarray(8, length).toString('utf8').replace(/\0+$/, '') });
        }
      });
      socket.on('end', () =>
        settle(new TgtdUnavailableError('tgtd closed the management connection mid-answer')),
      );
    });
  }

  /**
   * Fails clearly unless a tgtd that reads requests as this client writes them listens on the
   * control port: it must show its system, and a throw-away account created with parameters must
   * be listed under exactly its name (a header of another size would shift the parameters).
   */
  async probe(): Promise<void> {
    const refuse = (why: string) =>
      new BasaltError(
        `tgtd on control port ${this.controlPort} does not speak tgtadm's protocol as tgt 1.0 does (${why}); is it tgtd, with the iscsi driver?`,
      );
    const system = await this.request({ mode: TgtMode.system, op: TgtOp.show });
    if (system.code !== TgtErrno.success || !/^\s+iscsi: ready$/m.test(system.text)) {
      throw refuse(`"show system" answered ${system.code}`);
    }
    const user = `basaltprobe${randomBytes(6).toString('hex')}`;
    const created = await this.request({
      mode: TgtMode.account,
      op: TgtOp.new,
      params: { user, password: randomBytes(12).toString('hex') },
    });
    try {
      const listed = await this.request({ mode: TgtMode.account, op: TgtOp.show });
      if (created.code !== TgtErrno.success || !listed.text.split('\n').some((l) => l.trim() === user)) {
        throw refuse(`a probe account was not listed as created (code ${created.code})`);
      }
    } finally {
      await this.request({ mode: TgtMode.account, op: TgtOp.delete, params: { user } });
    }
  }
}
