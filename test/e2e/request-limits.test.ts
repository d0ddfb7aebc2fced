import { request } from '../support/http';
import { VolumeStack } from '../support/stack';

/** Each client's request rate and body size are bounded by the real api process, with Cinder's faults. */
describe('request limits', () => {
  const stack = new VolumeStack({
    extraEnv: {
      BASALT__API__RATE_LIMIT: '1',
      BASALT__API__RATE_LIMIT_BURST: '5',
      BASALT__API__MAX_REQUEST_BODY_SIZE: '2048',
    },
  });
  beforeAll(() => stack.start(), 60_000);
  afterAll(() => stack.stop(), 60_000);

  test('a client over its rate gets 429 with Retry-After; another client is not slowed', async () => {
    const list = (token: string) => request(`${stack.volumeUrl}/v3/limited/volumes`, { token });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await list('flood:limited')).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toContain(429);
    const refused = await list('flood:limited');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.body).toEqual({
      overLimit: {
        code: 429,
        message: 'This request was rate-limited.',
        retryAfter: refused.headers.get('retry-after'),
      },
    });
    expect((await list('calm:limited')).status).toBe(200);
    // the bucket refills: after Retry-After the client is served again
    await new Promise((r) => setTimeout(r, Number(refused.headers.get('retry-after')) * 1000));
    expect((await list('flood:limited')).status).toBe(200);
    // the identity API counts clients too (by address, for requests without a token)
    const identity: number[] = [];
    for (let i = 0; i < 8; i++) identity.push((await request(`${stack.identityUrl}/v3`)).status);
    expect(identity).toContain(429);
  }, 30_000);

  test('a body over max_request_body_size is 413 overLimit, and nothing is created', async () => {
    const api = `${stack.volumeUrl}/v3/bodies`;
    const res = await request(`${api}/volumes`, {
      method: 'POST',
      token: 'big:bodies',
      body: { volume: { size: 1, description: 'x'.repeat(4096) } },
    });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ overLimit: { code: 413, message: 'Request is too large.' } });
    expect((await request(`${api}/volumes`, { token: 'big:bodies' })).body.volumes).toEqual([]);
  });
});
