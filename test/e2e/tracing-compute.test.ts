import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { openProviderAuth, SecretBox, sealProviderAuth } from '@basalt/db';
import type { SpanNode } from '@basalt/trace';
import { GuestConsole } from '../support/guest';
import { passwordToken, request, waitForVolume } from '../support/http';
import type { ServiceName } from '../support/processes';
import { waitFor } from '../support/rpc';
import { descendants, expectNested, flatten } from '../support/span-tree';
import { VolumeStack } from '../support/stack';

type Span = SpanNode;

/** The sum of every series of `name` whose labels include all of `labels`, in Prometheus' text format. */
function sumOf(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * A volume created and attached to a running guest under one gateway request id: the operator
 * following that id sees api, scheduler, volume-worker and compute-worker, each step inside its
 * handler, and an attach that fails shows where and why.
 */
describe('a create-and-attach followed through every process', () => {
  const stack = new VolumeStack({ authStrategy: 'builtin', compute: true });
  let token = '';
  let projectId = '';
  let serverId = '';
  let volumeId = '';
  const requestId = `req-${randomUUID()}`;

  const volumes = () => `${stack.volumeUrl}/v3/${projectId}`;
  const compute = (path: string, init: Parameters<typeof request>[1] = {}) =>
    request(`${stack.computeUrl}/v2.1${path}`, { token, ...init });
  const attach = (id: string) =>
    compute(`/servers/${serverId}/os-volume_attachments`, {
      method: 'POST',
      body: { volumeAttachment: { volumeId: volumeId } },
      headers: { 'X-OpenStack-Request-ID': id },
    });
  const scrape = async (name: ServiceName) => {
    const url = /"metrics":"([^"]+)"/.exec(stack.service(name).log)?.[1];
    if (!url) throw new Error(`${name} did not say where its metrics are`);
    return (await fetch(url)).text();
  };

  /** The request's traces once `complete` finds what it waits for (each process exports in batches). */
  const tracesOf = (id: string, complete: (spans: Span[]) => boolean) =>
    waitFor(
      async () => {
        const found = await request(`${volumes()}/traces/${id}`, { token });
        if (found.status !== 200) return undefined;
        const traces = found.body.traces as Array<{ trace_id: string; roots: Span[] }>;
        return complete(flatten(traces.flatMap((t) => t.roots))) ? traces : undefined;
      },
      `the trace of ${id}`,
      30_000,
    );
  const named = (spans: Span[], name: string) => {
    const found = spans.find((s) => s.name === name);
    if (!found) throw new Error(`no ${name} in ${JSON.stringify(spans.map((s) => s.name))}`);
    return found;
  };

  beforeAll(async () => {
    await stack.start();
    ({ token, projectId } = await passwordToken(stack.identityUrl, 'admin', 'adminpass', 'admin'));
    const created = await compute('/servers', {
      method: 'POST',
      body: { server: { name: 'traced', flavorRef: '1', imageRef: stack.imageId, networks: 'none' } },
      headers: { 'OpenStack-API-Version': 'compute 2.37' },
    });
    expect(created.status).toBe(202);
    serverId = created.body.server.id;
    const server = await waitFor(
      async () => {
        const got = await compute(`/servers/${serverId}`);
        if (got.body.server?.status === 'ERROR') throw new Error(JSON.stringify(got.body));
        return got.body.server?.status === 'ACTIVE' ? got.body.server : undefined;
      },
      'the server to be ACTIVE',
      120_000,
    );
    const console = new GuestConsole(
      join(stack.instancesPath, server['OS-EXT-SRV-ATTR:instance_name'], 'console.log'),
    );
    await console.waitFor(/BLOCKDEVS t=\S+ vda\r?\n/, 'the guest to boot');
  }, 360_000);
  afterAll(() => stack.stop(), 120_000);

  test('one request id holds the create and the attach: four processes, each step inside its parent', async () => {
    const created = await request(`${volumes()}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1, name: 'traced' } },
      headers: { 'X-OpenStack-Request-ID': requestId },
    });
    expect(created.status).toBe(202);
    volumeId = created.body.volume.id;
    await waitForVolume(volumes(), token, volumeId, ['available']);
    const attached = await attach(requestId);
    expect(attached.status).toBe(200);
    expect(attached.headers.get('x-openstack-request-id')).toBe(requestId);
    await waitForVolume(volumes(), token, volumeId, ['in-use']);

    const traces = await tracesOf(
      requestId,
      (spans) =>
        // the attach's handler ends after all of its steps, so it may come in a later batch
        [
          'volume finishCreate',
          'libvirt attach-device',
          'volume.attach_volume',
          'compute.attach_volume',
        ].every((n) => spans.some((s) => s.name === n)) &&
        spans.filter((s) => s.process === 'basalt-api' && s.kind === 'server').length === 2,
    );
    // one tree: the request id's root over its two HTTP requests
    expect(traces).toHaveLength(1);
    const [tree] = traces;
    expect(tree?.roots).toHaveLength(1);
    const [root] = tree?.roots ?? [];
    expect(root).toMatchObject({ name: requestId, kind: 'request', request_id: requestId, status: 'ok' });
    const all = flatten(root?.children ?? []);
    expect(
      all.filter((s) => s.request_id !== requestId).map((s) => `${s.process} ${s.name} ${s.request_id}`),
    ).toEqual([]);
    expect([...new Set(all.map((s) => s.process))].sort()).toEqual([
      'basalt-api',
      'basalt-compute',
      'basalt-scheduler',
      'basalt-volume',
    ]);
    expect(root?.children.map((s) => s.name)).toEqual([
      'POST /v3/:project_id/volumes',
      'POST /v2.1/servers/:server_id/os-volume_attachments',
    ]);
    for (const http of root?.children ?? [])
      expect(http).toMatchObject({ process: 'basalt-api', kind: 'server', status: 'ok' });
    if (root) expectNested(root);
    const [createRequest, attachRequest] = root?.children ?? [];
    if (!createRequest || !attachRequest) throw new Error('the two HTTP requests are not under the root');
    // the attach began after the create was answered; the root spans both
    expect(attachRequest.offset_ms).toBeGreaterThanOrEqual(
      createRequest.offset_ms + createRequest.duration_ms,
    );
    expect((root?.offset_ms ?? 0) + (root?.duration_ms ?? 0)).toBeGreaterThanOrEqual(
      attachRequest.offset_ms + attachRequest.duration_ms,
    );
    const attachTree = flatten([attachRequest]);

    // the compute worker's handler holds the volume host's handlers it called and the hot-plug
    const handler = named(attachTree, 'compute.attach_volume');
    expect(handler).toMatchObject({ process: 'basalt-compute', kind: 'consumer', status: 'ok' });
    const inHandler = descendants(handler);
    const connecting = named(inHandler, 'volume.initialize_connection');
    expect(connecting.process).toBe('basalt-volume');
    // the initiator let into the target's ACL, request by request on tgtd's socket
    expect(descendants(connecting).some((s) => s.name.startsWith('tgtd '))).toBe(true);
    const plugging = named(inHandler, 'libvirt attach-device');
    expect(plugging).toMatchObject({ process: 'basalt-compute', kind: 'client', status: 'ok' });
    expect(plugging.attributes['libvirt.domain']).toEqual(expect.any(String));
    // a virsh session's command is the one line virsh parses (`virsh -c <uri> <line>`)
    const virsh = plugging.children.filter((s) => s.name === 'exec virsh');
    expect(
      virsh.map((s) => /^attach-device /.test((s.attributes['process.command_args'] as string[])[3] ?? '')),
    ).toContain(true);
    expect(named(inHandler, 'volume.attach_volume').process).toBe('basalt-volume');
    // the create's tree holds the export, request by request on tgtd's socket, inside the volume worker's handler
    const createTree = flatten([createRequest]);
    const creating = named(createTree, 'volume.create_volume');
    expect(descendants(creating).some((s) => s.name.startsWith('tgtd '))).toBe(true);
  }, 120_000);

  test("the compute worker's /metrics counts its handlers; the scheduler's gauges count instances and its heartbeat", async () => {
    const worker = await scrape('compute-worker');
    expect(
      sumOf(worker, 'basalt_rpc_handled_total', { topic: 'compute', method: 'attach_volume', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sumOf(worker, 'basalt_rpc_sent_total', { method: 'initialize_connection' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sumOf(worker, 'basalt_command_seconds_count', { command: 'virsh' })).toBeGreaterThan(0);
    const scheduler = await scrape('scheduler');
    expect(
      sumOf(scheduler, 'basalt_resources_by_status', { resource: 'instances', status: 'active' }),
    ).toBeGreaterThanOrEqual(1);
    const age = sumOf(scheduler, 'basalt_service_heartbeat_age_seconds', {
      host: stack.host,
      binary: 'basalt-compute',
    });
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(30);
  });

  test('an attach that fails midway (a wrong CHAP secret) shows in its tree where it failed and why', async () => {
    const detached = await compute(`/servers/${serverId}/os-volume_attachments/${volumeId}`, {
      method: 'DELETE',
    });
    expect(detached.status).toBe(202);
    await waitForVolume(volumes(), token, volumeId, ['available']);
    const [row] = await stack.query<{ provider_auth: string }>(
      'SELECT provider_auth FROM volumes WHERE id = $1',
      [volumeId],
    );
    // the stored secret is sealed for its row: a wrong one is sealed the same way
    const box = new SecretBox([stack.secretKey]);
    const [method, user] = openProviderAuth(box, volumeId, String(row?.provider_auth)).split(' ');
    const wrong = 'WrongSecret123456789';
    await stack.query('UPDATE volumes SET provider_auth = $2 WHERE id = $1', [
      volumeId,
      sealProviderAuth(box, volumeId, `${method} ${user} ${wrong}`),
    ]);
    const failedId = `req-${randomUUID()}`;
    try {
      expect((await attach(failedId)).status).toBe(200);
      await waitForVolume(volumes(), token, volumeId, ['available']);
    } finally {
      await stack.query('UPDATE volumes SET provider_auth = $2 WHERE id = $1', [
        volumeId,
        row?.provider_auth,
      ]);
    }
    const traces = await tracesOf(
      failedId,
      (spans) =>
        spans.some((s) => s.name === 'libvirt attach-device' && s.status === 'error') &&
        spans.some((s) => s.name === 'volume.terminate_connection') &&
        spans.some((s) => s.name === 'compute.attach_volume'),
    );
    const spans = flatten(traces.flatMap((t) => t.roots));
    const handler = named(spans, 'compute.attach_volume');
    const plugging = named(descendants(handler), 'libvirt attach-device');
    // the hot-plug failed, with libvirt's words, and so did the virsh command inside it
    expect(plugging.status).toBe('error');
    expect(plugging.error).toMatch(/virsh/);
    expect(plugging.children.some((s) => s.name === 'exec virsh' && s.status === 'error')).toBe(true);
    // and the roll-back that followed is in the same handler
    expect(named(descendants(handler), 'volume.terminate_connection').process).toBe('basalt-volume');
    for (const t of traces) for (const root of t.roots) expectNested(root);
    expect(JSON.stringify(traces)).not.toContain(wrong);
  }, 120_000);
});
