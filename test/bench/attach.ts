/**
 * bench:attach — 20 attach/detach cycles of one volume on one running guest, through the compute
 * API, each split into where its time went (API, RPC, target, libvirt, finishing, waiting), beside
 * the floor: the very disk XML hot-plugged and unplugged by hand with virsh. Also server create →
 * ACTIVE beside a hand-made define + start of the same domain. All in one run, on one machine.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SpanNode } from '@basalt/trace';
import { GuestConsole } from '../support/guest';
import { request } from '../support/http';
import { VolumeStack } from '../support/stack';
import { percentile } from './stats';

const run = promisify(execFile);
const CYCLES = 20;
const BOOTS = 3;
const TOKEN = 'bench:bench';
const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 2 ms until it answers something, as a client waiting for the state would;
 * so short that the figures are the system's (and the floor's domblklist), not the poll's.
 */
async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

type Phases = Record<string, number>;

const p = (values: readonly number[], q: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    q,
  );

function summary(name: string, samples: readonly Phases[], keys: readonly string[]): void {
  const cell = (values: number[], p: number) =>
    percentile(
      [...values].sort((a, b) => a - b),
      p,
    ).toFixed(0);
  const parts = keys.map((k) => {
    const values = samples.map((s) => s[k] ?? 0);
    return `${k} ${cell(values, 50)}/${cell(values, 90)}`;
  });
  console.log(`  ${name.padEnd(8)} p50/p90 ms: ${parts.join(', ')}`);
}

/**
 * The spans of every attach's trace, by their place in the tree (the names from the root down):
 * p50 of when each began from the trace's start and of how long it took, in the median attach's order.
 */
function spanMedians(traces: readonly (readonly SpanNode[])[]): string[] {
  const seen = new Map<string, { depth: number; offsets: number[]; durations: number[] }>();
  const visit = (nodes: readonly SpanNode[], path: string, depth: number) => {
    for (const node of nodes) {
      // the gateway id and hosts differ per run; the operation names do not
      const name =
        node.kind === 'request' ? 'request' : node.name.replace(/\.[a-z]+_[0-9a-f]+\./, '.<host>.');
      const key = `${path}/${name}`;
      const entry = seen.get(key) ?? { depth, offsets: [], durations: [] };
      entry.offsets.push(node.offset_ms);
      entry.durations.push(node.duration_ms);
      seen.set(key, entry);
      visit(node.children, key, depth + 1);
    }
  };
  for (const roots of traces) visit(roots, '', 0);
  return [...seen].map(
    ([key, e]) =>
      `    +${p(e.offsets, 50).toFixed(1).padStart(6)}  ${p(e.durations, 50).toFixed(1).padStart(6)} ms  ${'  '.repeat(e.depth)}${key.slice(key.lastIndexOf('/') + 1)} (${e.durations.length})`,
  );
}

async function main() {
  const stack = new VolumeStack({
    compute: true,
    extraEnv: { BASALT__COMPUTE__DEVICE_DETACH_TIMEOUT: '60' },
  });
  try {
    await stack.start();
  } catch (error) {
    await stack.stop();
    throw error;
  }
  try {
    const compute = (path: string, init: Parameters<typeof request>[1] = {}) =>
      request(`${stack.computeUrl}/v2.1${path}`, { token: TOKEN, ...init });
    const volumes = `${stack.volumeUrl}/v3/bench`;
    const computeLog = () => stack.service('compute-worker').log;
    const logLine = (msg: string, volumeId: string, after: number) =>
      computeLog()
        .split('\n')
        .slice(after)
        .map((l) => (l.includes(`"msg":"${msg}"`) && l.includes(volumeId) ? JSON.parse(l) : undefined))
        .find(Boolean) as (Record<string, number | string> & { time: string }) | undefined;
    const lines = () => computeLog().split('\n').length - 1;

    // server create → ACTIVE, and the floor: the same domain defined and started by hand
    const serverIds: string[] = [];
    const creates: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      const t0 = performance.now();
      const created = await compute('/servers', {
        method: 'POST',
        body: { server: { name: `bench${i}`, flavorRef: '1', imageRef: stack.imageId } },
      });
      const id = created.body.server.id as string;
      await until(async () => {
        const s = (await compute(`/servers/${id}`)).body.server;
        if (s.status === 'ERROR') throw new Error(JSON.stringify(s.fault));
        return s.status === 'ACTIVE' ? true : undefined;
      }, 'ACTIVE');
      creates.push(performance.now() - t0);
      serverIds.push(id);
    }
    const serverId = serverIds[0] as string;
    const name = (await compute(`/servers/${serverId}`)).body.server[
      'OS-EXT-SRV-ATTR:instance_name'
    ] as string;
    const dir = join(stack.instancesPath, name);
    const floorCreates: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      const copy = `${stack.libvirt?.prefix}-floor${i}`;
      const overlay = join(stack.instancesPath, `${copy}.qcow2`);
      const backing = JSON.parse(
        (await run('qemu-img', ['info', '-U', '--output=json', join(dir, 'disk')])).stdout,
      )['full-backing-filename'];
      const xml = readFileSync(join(dir, 'libvirt.xml'), 'utf8')
        .replace(/<name>[^<]*<\/name>/, `<name>${copy}</name>`)
        .replace(/<uuid>[^<]*<\/uuid>/, '')
        .replace(join(dir, 'disk'), overlay)
        .replace(/<serial type='unix'>[\s\S]*?<\/serial>/, '')
        .replace(join(dir, 'console.log'), join(stack.instancesPath, `${copy}.log`));
      const xmlFile = join(stack.instancesPath, `${copy}.xml`);
      writeFileSync(xmlFile, xml);
      const t0 = performance.now();
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing, overlay]);
      await virsh('define', xmlFile);
      await virsh('start', copy);
      floorCreates.push(performance.now() - t0);
      await virsh('destroy', copy);
      await virsh('undefine', copy);
    }
    for (const id of serverIds.slice(1)) await compute(`/servers/${id}`, { method: 'DELETE' });

    // the guest must be up before disks come and go (a guest still booting ignores an unplug)
    const guestConsole = new GuestConsole(join(dir, 'console.log'));
    await guestConsole.waitFor(/BLOCKDEVS t=\S+ vda\r?\n/, 'the guest to boot', 120_000);

    const vol = await request(`${volumes}/volumes`, {
      method: 'POST',
      token: TOKEN,
      body: { volume: { size: 1, name: 'bench' } },
    });
    const volumeId = vol.body.volume.id as string;
    const volumeStatus = async () => {
      const v = (await request(`${volumes}/volumes/${volumeId}`, { token: TOKEN })).body.volume;
      return v.status === 'in-use' && v.attachments.length === 0 ? 'attaching' : (v.status as string);
    };
    await until(async () => ((await volumeStatus()) === 'available' ? true : undefined), 'available');

    const attaches: Phases[] = [];
    const attachIds: string[] = [];
    const detaches: Phases[] = [];
    for (let i = 0; i < CYCLES; i++) {
      await guestConsole.mark();
      let from = lines();
      let t0 = performance.now();
      const started = Date.now();
      const requestId = `req-${randomUUID()}`;
      attachIds.push(requestId);
      const res = await compute(`/servers/${serverId}/os-volume_attachments`, {
        method: 'POST',
        body: { volumeAttachment: { volumeId } },
        headers: { 'X-OpenStack-Request-ID': requestId },
      });
      if (res.status !== 200) throw new Error(JSON.stringify(res.body));
      const api = performance.now() - t0;
      await until(async () => ((await volumeStatus()) === 'in-use' ? true : undefined), 'in-use');
      let total = performance.now() - t0;
      let line = await until(async () => logLine('volume attached', volumeId, from), 'the attach log line');
      let handled = Number(line.target_ms) + Number(line.libvirt_ms) + Number(line.finish_ms);
      let handlerEnd = Date.parse(line.time) - started;
      attaches.push({
        total,
        api,
        rpc: Math.max(0, handlerEnd - handled - api),
        target: Number(line.target_ms),
        libvirt: Number(line.libvirt_ms),
        finish: Number(line.finish_ms),
        waiting: Math.max(0, total - handlerEnd),
      });
      // the guest has the disk before it is asked to let go of it (excluded from both figures)
      await guestConsole.waitFor(new RegExp(`serial=${volumeId.slice(0, 20)}`), 'the guest to see the disk');

      from = lines();
      t0 = performance.now();
      const detachStarted = Date.now();
      const del = await compute(`/servers/${serverId}/os-volume_attachments/${volumeId}`, {
        method: 'DELETE',
      });
      if (del.status !== 202) throw new Error(JSON.stringify(del.body));
      const dapi = performance.now() - t0;
      await until(async () => ((await volumeStatus()) === 'available' ? true : undefined), 'available');
      total = performance.now() - t0;
      line = await until(async () => logLine('volume detached', volumeId, from), 'the detach log line');
      handled = Number(line.libvirt_ms) + Number(line.target_ms);
      handlerEnd = Date.parse(line.time) - detachStarted;
      detaches.push({
        total,
        api: dapi,
        rpc: Math.max(0, handlerEnd - handled - dapi),
        libvirt: Number(line.libvirt_ms),
        target: Number(line.target_ms),
        waiting: Math.max(0, total - handlerEnd),
      });
    }

    // the floor: attach once more through Basalt (target ACL and secret in place), take the
    // disk's XML as libvirt holds it, then unplug and plug that XML by hand
    await compute(`/servers/${serverId}/os-volume_attachments`, {
      method: 'POST',
      body: { volumeAttachment: { volumeId } },
    });
    await until(async () => ((await volumeStatus()) === 'in-use' ? true : undefined), 'in-use');
    const domainXml = await virsh('dumpxml', name);
    const disk = /<disk type='network'[\s\S]*?<\/disk>/.exec(domainXml)?.[0];
    if (!disk) throw new Error('no network disk in the domain');
    const diskFile = join(stack.instancesPath, 'floor-disk.xml');
    writeFileSync(diskFile, disk.replace(/\s*<alias [^>]*\/>/, '').replace(/\s*<address [^>]*\/>/, ''));
    const target = /<target dev='(vd[a-z]+)'/.exec(disk)?.[1] as string;
    const listed = async () => (await virsh('domblklist', name)).includes(` ${target} `);
    // the floor as the detach's is timed: the command, then domblklist polled until it agrees;
    // beside it the stricter one, attach-device alone (the disk is listed once it returns)
    const floorAttach: number[] = [];
    const floorPlug: number[] = [];
    const floorDetach: number[] = [];
    await guestConsole.waitFor(new RegExp(`serial=${volumeId.slice(0, 20)}`), 'the guest to see the disk');
    for (let i = 0; i <= CYCLES; i++) {
      let t0 = performance.now();
      await virsh('detach-device', name, diskFile, '--live', '--config');
      await until(async () => ((await listed()) ? undefined : true), 'the disk to go');
      if (i > 0) floorDetach.push(performance.now() - t0);
      if (i === CYCLES) break;
      await guestConsole.mark();
      t0 = performance.now();
      await virsh('attach-device', name, diskFile, '--live', '--config');
      floorPlug.push(performance.now() - t0);
      await until(async () => ((await listed()) ? true : undefined), 'the disk to show');
      floorAttach.push(performance.now() - t0);
      await guestConsole.waitFor(new RegExp(`serial=${volumeId.slice(0, 20)}`), 'the guest to see the disk');
    }
    // as Basalt left it: plugged, so its detach finds what it recorded
    await virsh('attach-device', name, diskFile, '--live', '--config');
    await guestConsole.waitFor(new RegExp(`serial=${volumeId.slice(0, 20)}`), 'the guest to see the disk');
    await compute(`/servers/${serverId}/os-volume_attachments/${volumeId}`, { method: 'DELETE' });
    await until(async () => ((await volumeStatus()) === 'available' ? true : undefined), 'available');

    // what one more virsh process costs: the unit an attach's extra runs are counted in
    const virshRuns: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const t0 = performance.now();
      await virsh('version', '--daemon');
      virshRuns.push(performance.now() - t0);
    }

    const totals = (s: Phases[]) => s.map((x) => x.total as number);
    // span by span, where within each phase the time went
    const traces: SpanNode[][] = [];
    for (const id of attachIds) {
      const found = await request(`${volumes}/traces/${id}`, { token: TOKEN });
      if (found.status === 200)
        traces.push((found.body.traces as Array<{ roots: SpanNode[] }>).flatMap((t) => t.roots));
    }
    console.log(
      `bench:attach — ${CYCLES} attach/detach cycles of one 1 GB volume on one TCG guest (qemu connector, real tgtd)`,
    );
    summary('attach', attaches, ['total', 'api', 'rpc', 'target', 'libvirt', 'finish', 'waiting']);
    summary('detach', detaches, ['total', 'api', 'rpc', 'target', 'libvirt', 'waiting']);
    const ratio = (basalt: number[], floor: number[], q: number) => (p(basalt, q) / p(floor, q)).toFixed(2);
    console.log(
      `  floor (virsh attach-device / detach-device, then domblklist polled until it agrees; same XML) p50/p90 ms: attach ${p(floorAttach, 50).toFixed(0)}/${p(floorAttach, 90).toFixed(0)}, detach ${p(floorDetach, 50).toFixed(0)}/${p(floorDetach, 90).toFixed(0)}; attach-device alone ${p(floorPlug, 50).toFixed(0)}/${p(floorPlug, 90).toFixed(0)}`,
    );
    console.log(
      `  one virsh process (virsh version --daemon) p50/p90 ms: ${p(virshRuns, 50).toFixed(0)}/${p(virshRuns, 90).toFixed(0)}`,
    );
    console.log(
      `  Basalt/floor: attach p50 ${ratio(totals(attaches), floorAttach, 50)} p90 ${ratio(totals(attaches), floorAttach, 90)}; detach p50 ${ratio(totals(detaches), floorDetach, 50)} p90 ${ratio(totals(detaches), floorDetach, 90)} (target <= 1.5)`,
    );
    console.log(
      `  Basalt/attach-device alone: attach p50 ${ratio(totals(attaches), floorPlug, 50)} p90 ${ratio(totals(attaches), floorPlug, 90)}`,
    );
    console.log("  the attaches' spans, p50 of start (from the request's) and of duration (how many seen):");
    for (const line of spanMedians(traces)) console.log(line);
    console.log(
      `  server create -> ACTIVE (${BOOTS} runs) p50 ${p(creates, 50).toFixed(0)} ms; floor (qemu-img create + virsh define + start) p50 ${p(floorCreates, 50).toFixed(0)} ms; Basalt/floor ${(p(creates, 50) / p(floorCreates, 50)).toFixed(2)}`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
