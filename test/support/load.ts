import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/**
 * Light HTTP clients for load: plain keep-alive HTTP/1.1 requests (fetch costs several times the
 * CPU per request, and the clients share the machine with what they measure).
 */
export class LoadClient {
  private readonly agent: Agent;

  constructor(
    readonly clients: number,
    private readonly token: string,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: clients });
  }

  /** One request, with the client's token unless another is given. */
  send(
    method: string,
    url: string,
    body?: unknown,
    token = this.token,
  ): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            'X-Auth-Token': token,
            ...(payload
              ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              headers: res.headers,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Runs `op(0)`…`op(total - 1)` on `clients` concurrent loops. */
  async inParallel(total: number, op: (i: number) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: this.clients }, async () => {
        while (next < total) await op(next++);
      }),
    );
  }

  close(): void {
    this.agent.destroy();
  }
}
