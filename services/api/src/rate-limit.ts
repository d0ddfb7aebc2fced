import { createHash } from 'node:crypto';
import { TooManyRequestsError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { faultFor } from './faults';

export interface RateLimitOptions {
  /** Requests per second a client regains; 0 turns the limit off. */
  readonly ratePerSec: number;
  /** Requests a client may make at once. */
  readonly burst: number;
  /** Clients tracked at most; idle ones (their bucket full again) are forgotten first. */
  readonly maxClients?: number;
  readonly now?: () => number;
}

/** A token bucket per client: `take` answers 0 when the request may go, else the seconds to wait. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? (() => performance.now() / 1000);
  }

  get enabled(): boolean {
    return this.options.ratePerSec > 0;
  }

  take(client: string): number {
    const { ratePerSec, burst } = this.options;
    const now = this.now();
    const bucket = this.buckets.get(client) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) * ratePerSec);
    bucket.at = now;
    // re-inserted: the map's order is then least recently seen first
    this.buckets.delete(client);
    this.buckets.set(client, bucket);
    if (this.buckets.size > this.maxClients) this.forgetIdle(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / ratePerSec;
  }

  private forgetIdle(now: number): void {
    for (const [client, bucket] of this.buckets) {
      if (this.buckets.size <= this.maxClients) return;
      const full = bucket.tokens + (now - bucket.at) * this.options.ratePerSec >= this.options.burst;
      // the least recently seen go even when not idle: memory stays bounded under a flood of new clients
      if (full || this.buckets.size > this.maxClients * 2) this.buckets.delete(client);
    }
  }
}

/**
 * Every request is counted against its client before anything else is done with it (even its
 * body): the client is its token when it sends one, else its address. Over the limit it gets
 * Cinder's 429 `overLimit` fault with `Retry-After` in seconds, as a header and as `retryAfter`.
 */
export function registerRateLimit(app: FastifyInstance, limiter: RateLimiter): void {
  if (!limiter.enabled) return;
  app.addHook('onRequest', async (req, reply) => {
    const wait = limiter.take(clientOf(req));
    if (wait === 0) return;
    const retryAfter = String(Math.max(1, Math.ceil(wait)));
    const fault = faultFor(new TooManyRequestsError('This request was rate-limited.'));
    const body = Object.fromEntries(
      Object.entries(fault.body).map(([name, value]) => [name, { ...value, retryAfter }]),
    );
    return reply.code(fault.status).header('Retry-After', retryAfter).send(body);
  });
}

function clientOf(req: FastifyRequest): string {
  const token = req.headers['x-auth-token'];
  const value = Array.isArray(token) ? token[0] : token;
  // a digest, so the limiter's memory holds no token
  return value ? `token:${createHash('sha256').update(value).digest('base64url')}` : `address:${req.ip}`;
}
