import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type OtlpBody = { resourceSpans: any[] };

/** A local OTLP/HTTP collector: keeps every JSON body posted to /v1/traces. */
export async function otlpCollector(): Promise<{
  url: string;
  bodies: OtlpBody[];
  close: () => Promise<void>;
}> {
  const bodies: OtlpBody[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Every span of the bodies received, each with its resource's attributes. */
export function otlpSpans(bodies: readonly OtlpBody[]): any[] {
  return bodies.flatMap((b) =>
    b.resourceSpans.flatMap((rs: any) =>
      rs.scopeSpans.flatMap((ss: any) =>
        ss.spans.map((s: any) => ({ ...s, resource: rs.resource.attributes })),
      ),
    ),
  );
}

/** A string attribute of an OTLP span or resource. */
export const otlpAttribute = (attributes: any[], key: string): string | undefined =>
  attributes.find((a) => a.key === key)?.value.stringValue;
