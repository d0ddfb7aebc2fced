import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GuestConsole, GuestShell } from '../support/guest';
import { passwordToken, request, waitForVolume } from '../support/http';
import { PrivateRabbitMq } from '../support/private-rabbitmq';
import { waitFor } from '../support/rpc';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
const MARKER_NS = 'https://basalt.invalid/xmlns/instance/1.0';
/** Where a volume may be left by an attach, a detach or a race: anything else is still in transit. */
const SETTLED = ['available', 'in-use', 'error', 'deleted'];

/**
 * The compute worker under crashes, lost messages, a tgtd restart and races, on one guest
 * (booted once, reused): every instance and volume ends where its request or its rollback says,
 * with nothing of a rolled-back attach left (libvirt secret, ACL entry, mapping row, guest disk),
 * and the reconciler removes what Basalt left on the host and only reports what is not its own.
 */
describe('the compute worker under faults', () => {
  // a broker of the test's own, restarted without disturbing anyone else on the machine
  let rabbit: PrivateRabbitMq;
  let stack: VolumeStack;
  let token = '';
  let project = '';
  let server = '';
  let domain = '';
  /** The volume attached through the tgtd restart. */
  let throughRestart = '';

  const compute = (path: string, init: Parameters<typeof request>[1] = {}) =>
    request(`${stack.computeUrl}/v2.1${path}`, { token, ...init });
  const volumeApi = () => `${stack.volumeUrl}/v3/${project}`;
  const volumeCall = (path: string, init: Parameters<typeof request>[1] = {}) =>
    request(`${volumeApi()}${path}`, { token, ...init });
  const attach = (volumeId: string) =>
    compute(`/servers/${server}/os-volume_attachments`, {
      method: 'POST',
      body: { volumeAttachment: { volumeId } },
    });
  const guestConsole = () => new GuestConsole(join(stack.instancesPath, domain, 'console.log'));

  async function createVolume(name: string): Promise<string> {
    const res = await volumeCall('/volumes', { method: 'POST', body: { volume: { size: 1, name } } });
    expect(res.status).toBe(202);
    await waitForVolume(volumeApi(), token, res.body.volume.id, ['available']);
    return res.body.volume.id as string;
  }

  /** A volume created, then deleted: its row stays, `deleted`. */
  async function deletedVolume(name: string): Promise<string> {
    const id = await createVolume(name);
    expect((await volumeCall(`/volumes/${id}`, { method: 'DELETE' })).status).toBe(202);
    await waitForVolume(volumeApi(), token, id, ['deleted'], 30_000);
    return id;
  }

  /** The server once its status is one of `statuses` (task done). */
  async function serverIn(statuses: string[], timeoutMs = 120_000) {
    return waitFor(
      async () => {
        const res = await compute(`/servers/${server}`);
        if (res.status === 404 && statuses.includes('DELETED')) return { status: 'DELETED' };
        const s = res.body.server;
        return res.status === 200 && statuses.includes(s.status) && s['OS-EXT-STS:task_state'] === null
          ? s
          : undefined;
      },
      `server ${server} in ${statuses.join('|')}`,
      timeoutMs,
    );
  }

  /** The volume once it has left every transitional state. */
  const settled = (id: string, timeoutMs = 60_000) =>
    waitForVolume(volumeApi(), token, id, SETTLED, timeoutMs);

  const secretsOf = async (volumeId: string) =>
    (await virsh('secret-list')).split('\n').filter((l) => l.includes(`basalt-volume-${volumeId}`));
  /** The ACL of the volume's target (empty when it is not exported). */
  async function aclOf(volumeId: string): Promise<string[]> {
    const [row] = await stack.query<{ backend_name: string }>(
      'SELECT backend_name FROM volumes WHERE id = $1',
      [volumeId],
    );
    const out = await stack.tgtd.targets();
    const at = out.search(new RegExp(`Target \\d+: \\S+:${row?.backend_name}\\n`));
    if (at < 0) return [];
    const block = out.slice(at).split(/\nTarget \d+:/)[0] ?? '';
    return (/ACL information:\n((?:\s{8}\S+\n)*)/.exec(block)?.[1] ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }
  const liveMappings = (volumeId: string) =>
    stack.query<{ status: string }>(
      'SELECT status FROM block_device_mappings WHERE volume_id = $1 AND NOT deleted',
      [volumeId],
    );

  /** A volume rolled back from an attach: available, and nothing of the attach anywhere. */
  async function expectNothingLeft(volumeId: string): Promise<void> {
    expect((await settled(volumeId)).status).toBe('available');
    expect(await liveMappings(volumeId)).toEqual([]);
    expect(await secretsOf(volumeId)).toEqual([]);
    expect(await aclOf(volumeId)).toEqual([]);
    const serials = await virsh('dumpxml', domain);
    expect(serials).not.toContain(volumeId);
  }

  /** A volume that ended attached: in-use, one attached mapping, its disk in the domain. */
  async function expectAttached(volumeId: string): Promise<void> {
    // the volume host marks the volume in-use a moment before the mapping is marked attached
    await waitFor(
      async () => (await liveMappings(volumeId))[0]?.status !== 'attaching' || undefined,
      'the attach to end',
      60_000,
    );
    expect((await settled(volumeId)).status).toBe('in-use');
    expect(await liveMappings(volumeId)).toEqual([{ status: 'attached' }]);
    expect(await virsh('dumpxml', domain)).toContain(volumeId);
    expect(await aclOf(volumeId)).toEqual(['127.0.0.1']);
  }

  beforeAll(async () => {
    rabbit = await PrivateRabbitMq.start();
    stack = new VolumeStack({
      authStrategy: 'builtin',
      compute: true,
      brokerUrl: rabbit.url,
      extraEnv: {
        // a lost message is noticed within a few seconds, not the production twenty
        BASALT__DEFAULT__RESUME_STALLED_AFTER: '2',
        BASALT__RABBIT__RECONNECT_DELAY_MAX: '1',
        BASALT__RABBIT__CONNECT_RETRIES: '20',
        // more volumes than the default quota's ten, each left where its test put it
        BASALT__QUOTA__VOLUMES: '-1',
        BASALT__QUOTA__GIGABYTES: '-1',
      },
    });
    await stack.start();
    ({ token, projectId: project } = await passwordToken(stack.identityUrl, 'alice', 'alicepass', 'demo'));
  }, 360_000);
  afterAll(async () => {
    await stack?.stop();
    await rabbit?.stop();
  }, 120_000);

  test('kill -9 of the compute worker mid-boot: after its restart the server is ACTIVE, one domain', async () => {
    const created = await compute('/servers', {
      method: 'POST',
      body: { server: { name: 'crashed-boot', flavorRef: '1', imageRef: stack.imageId, networks: 'none' } },
      headers: { 'OpenStack-API-Version': 'compute 2.37' },
    });
    expect(created.status).toBe(202);
    server = created.body.server.id;
    const [row] = await waitFor(
      async () => {
        const rows = await stack.query<{ seq: number }>(
          "SELECT seq FROM instances WHERE id = $1 AND task_state = 'spawning'",
          [server],
        );
        return rows.length > 0 ? rows : undefined;
      },
      'the instance handed to the compute host',
      60_000,
    );
    domain = stack.instanceNameTemplate().replace('%08x', Number(row?.seq).toString(16).padStart(8, '0'));
    // the disks are being made: the spawn is under way
    await waitFor(
      () => existsSync(join(stack.instancesPath, domain)) || undefined,
      'the instance folder',
      60_000,
    );
    await stack.service('compute-worker').kill();
    await stack.startService('compute-worker');
    const booted = await serverIn(['ACTIVE', 'ERROR']);
    if (booted.status === 'ERROR') expect(booted.fault.message).toMatch(/spawn failed/);
    expect(booted.status).toBe('ACTIVE');
    expect(await stack.libvirt?.domains()).toEqual([domain]);
    expect((await virsh('domstate', domain)).trim()).toBe('running');
    await guestConsole().waitFor(/BOOTED/, 'the guest to boot', 120_000);
  }, 300_000);

  test('basalt reconcile: its orphans are shown, then removed; the foreign domain is only reported', async () => {
    const prefix = stack.libvirt?.prefix as string;
    const orphanDomain = `${prefix}-0000fff0`;
    const unmarkedDomain = `${prefix}-0000fff1`;
    const foreignDomain = `${prefix}-foreign`;
    const define = async (name: string, metadata: string) => {
      const file = join(stack.instancesPath, `${name}.xml`);
      writeFileSync(
        file,
        `<domain type='qemu'><name>${name}</name><memory unit='MiB'>16</memory>${metadata}<os><type arch='x86_64'>hvm</type></os></domain>`,
      );
      await virsh('define', file);
    };
    // secrets of volumes of this stack: one that no attachment uses, two of deleted volumes, one
    // of them named by a domain's disk
    const spare = await createVolume('spare');
    const gone = await deletedVolume('gone');
    const goneButNamed = await deletedVolume('gone-but-named');
    const secretXml = join(stack.instancesPath, 'secret.xml');
    for (const id of [spare, gone, goneButNamed]) {
      writeFileSync(
        secretXml,
        `<secret ephemeral='no' private='yes'><usage type='iscsi'><target>basalt-volume-${id}</target></usage></secret>`,
      );
      await virsh('secret-define', secretXml);
    }
    await define(orphanDomain, `<metadata><basalt:instance xmlns:basalt='${MARKER_NS}'/></metadata>`);
    await define(
      unmarkedDomain,
      `<devices><disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='iscsi' name='iqn.2010-10.org.openstack:gone/1'><host name='127.0.0.1' port='3260'/></source><auth username='u'><secret type='iscsi' usage='basalt-volume-${goneButNamed}'/></auth><target dev='vda' bus='virtio'/></disk></devices>`,
    );
    await define(foreignDomain, '');
    const orphanFolder = join(stack.instancesPath, `${prefix}-0000fff2`);
    const unmarkedFolder = join(stack.instancesPath, `${prefix}-0000fff3`);
    mkdirSync(orphanFolder);
    writeFileSync(join(orphanFolder, '.basalt-instance'), '');
    mkdirSync(unmarkedFolder);

    const rowsOf = (out: string) =>
      out
        .split('\n')
        .filter((l) => l.includes(stack.host) && /\| (domain|secret|folder) /.test(l))
        .map((l) =>
          l
            .split('|')
            .slice(2, 5)
            .map((c) => c.trim()),
        );
    const dry = await stack.basalt('reconcile', '--dry-run', '--host', stack.host);
    expect(rowsOf(dry)).toEqual(
      expect.arrayContaining([
        ['domain', orphanDomain, 'would remove'],
        ['domain', unmarkedDomain, 'reported'],
        ['domain', foreignDomain, 'reported'],
        ['secret', `basalt-volume-${spare}`, 'would remove'],
        ['secret', `basalt-volume-${gone}`, 'would remove'],
        ['secret', `basalt-volume-${goneButNamed}`, 'reported'],
        ['folder', `${prefix}-0000fff2`, 'would remove'],
        ['folder', `${prefix}-0000fff3`, 'reported'],
      ]),
    );
    expect(rowsOf(dry).map((r) => r[1])).not.toContain(domain);
    expect(dry).toMatch(/dry run: nothing changed/);
    expect((await stack.libvirt?.domains())?.sort()).toEqual(
      [domain, orphanDomain, unmarkedDomain, foreignDomain].sort(),
    );
    for (const id of [spare, gone, goneButNamed]) expect(await secretsOf(id)).toHaveLength(1);
    expect(existsSync(orphanFolder)).toBe(true);

    const real = await stack.basalt('reconcile', '--host', stack.host);
    expect(rowsOf(real)).toEqual(
      expect.arrayContaining([
        ['domain', orphanDomain, 'removed'],
        ['domain', foreignDomain, 'reported'],
        ['secret', `basalt-volume-${spare}`, 'removed'],
        ['secret', `basalt-volume-${gone}`, 'removed'],
        ['secret', `basalt-volume-${goneButNamed}`, 'reported'],
        ['folder', `${prefix}-0000fff2`, 'removed'],
      ]),
    );
    expect((await stack.libvirt?.domains())?.sort()).toEqual([domain, unmarkedDomain, foreignDomain].sort());
    expect(await secretsOf(spare)).toEqual([]);
    expect(await secretsOf(gone)).toEqual([]);
    expect(await secretsOf(goneButNamed)).toHaveLength(1);
    expect(existsSync(orphanFolder)).toBe(false);
    expect(existsSync(unmarkedFolder)).toBe(true);
    // the live guest is untouched
    expect((await virsh('domstate', domain)).trim()).toBe('running');
    for (const name of [unmarkedDomain, foreignDomain]) await virsh('undefine', name);
    const [line] = await secretsOf(goneButNamed);
    await virsh('secret-undefine', line?.trim().split(/\s+/)[0] as string);
  }, 120_000);

  test('kill -9 of the compute worker mid-attach: after its restart the attach is finished', async () => {
    const volumeId = await createVolume('crashed-attach');
    expect((await attach(volumeId)).status).toBe(200);
    // the connection is made (the target's ACL names this host): the hot-plug comes next
    await waitFor(
      async () => {
        const rows = await stack.query(
          'SELECT 1 FROM block_device_mappings WHERE volume_id = $1 AND connection_info IS NOT NULL',
          [volumeId],
        );
        return rows.length > 0 || undefined;
      },
      'the attach under way',
      30_000,
    );
    await stack.service('compute-worker').kill();
    await stack.startService('compute-worker');
    await expectAttached(volumeId);
  }, 120_000);

  test('RabbitMQ restarts over an attach it took but had not handed on: the attach is finished', async () => {
    const volumeId = await createVolume('through-broker-restart');
    const worker = stack.service('compute-worker').pid as number;
    // the worker takes nothing until the broker is gone: the confirmed cast waits in its queue
    process.kill(worker, 'SIGSTOP');
    try {
      expect((await attach(volumeId)).status).toBe(200);
      await rabbit.stopNode();
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    await rabbit.startNode();
    await expectAttached(volumeId);
    expect((await virsh('dumpxml', domain)).split(`<serial>${volumeId}</serial>`).length - 1).toBe(1);
  }, 120_000);

  test('an attach whose message was lost is finished by the sweep', async () => {
    const volumeId = await createVolume('lost-attach');
    // what the API records before its cast, the cast never sent
    await stack.query(
      "UPDATE volumes SET status = 'attaching', attach_status = 'attaching', updated_at = now() WHERE id = $1",
      [volumeId],
    );
    const [host] = await stack.query<{ host: string }>('SELECT host FROM volumes WHERE id = $1', [volumeId]);
    await stack.query(
      `INSERT INTO block_device_mappings (id, instance_uuid, volume_id, device_name, volume_host, status)
       VALUES (gen_random_uuid(), $1, $2, '/dev/vdz', $3, 'attaching')`,
      [server, volumeId, host?.host],
    );
    await expectAttached(volumeId);
  }, 60_000);

  test('an attach of a volume whose stored CHAP secret no longer opens, with no target config to recover it from, is rolled back, with the reason logged', async () => {
    const volumeId = await createVolume('sealed-away');
    // sealed under a key that is gone, and the second source, its target's config, lost too
    await stack.query(
      "UPDATE volumes SET provider_auth = regexp_replace(provider_auth, '^enc:v1:[^:]+:', 'enc:v1:gone:') WHERE id = $1",
      [volumeId],
    );
    const [row] = await stack.query<{ backend_name: string }>(
      'SELECT backend_name FROM volumes WHERE id = $1',
      [volumeId],
    );
    rmSync(join(stack.volumesDir, row?.backend_name as string));
    expect((await attach(volumeId)).status).toBe(200);
    await expectNothingLeft(volumeId);
    expect(stack.service('compute-worker').log).toMatch(
      new RegExp(`"volume_id":"${volumeId}".*stored CHAP secret cannot be opened.*"attach failed"`),
    );
  }, 60_000);

  test("an attach of a volume whose stored CHAP secret no longer opens takes the credentials its target's config keeps", async () => {
    const volumeId = await createVolume('recovered');
    await stack.query(
      "UPDATE volumes SET provider_auth = regexp_replace(provider_auth, '^enc:v1:[^:]+:', 'enc:v1:gone:') WHERE id = $1",
      [volumeId],
    );
    expect((await attach(volumeId)).status).toBe(200);
    await expectAttached(volumeId);
    expect(stack.service('volume-worker').log).toMatch(
      new RegExp(`"volume_id":"${volumeId}".*"msg":"CHAP secret does not open: its target config has it"`),
    );
  }, 60_000);

  test('a detach whose message was lost is finished', async () => {
    const volumeId = await createVolume('lost-detach');
    expect((await attach(volumeId)).status).toBe(200);
    await waitFor(
      async () => (await liveMappings(volumeId))[0]?.status === 'attached' || undefined,
      'attached',
    );
    await expectAttached(volumeId);
    // what the API records before its cast, the cast never sent
    await stack.query(
      "UPDATE volumes SET status = 'detaching', attach_status = 'detaching', updated_at = now() WHERE id = $1",
      [volumeId],
    );
    await stack.query(
      "UPDATE block_device_mappings SET status = 'detaching', updated_at = now() WHERE volume_id = $1 AND NOT deleted",
      [volumeId],
    );
    await expectNothingLeft(volumeId);
  }, 120_000);

  test('a reboot whose message was lost is finished: the guest boots again', async () => {
    const before = readFileSync(join(stack.instancesPath, domain, 'console.log'), 'latin1');
    await stack.query(
      "UPDATE instances SET task_state = 'rebooting', updated_at = now() WHERE id = $1 AND task_state IS NULL",
      [server],
    );
    expect((await serverIn(['ACTIVE'])).status).toBe('ACTIVE');
    await waitFor(
      () => {
        const now = readFileSync(join(stack.instancesPath, domain, 'console.log'), 'latin1');
        const fresh = now.startsWith(before) ? now.slice(before.length) : now;
        return fresh.includes('BOOTED') || undefined;
      },
      'the guest to boot again',
      120_000,
    );
  }, 180_000);

  test("tgtd restarts under an attached volume: the export comes back and the guest's writes reach the volume", async () => {
    const volumeId = await createVolume('through-tgtd-restart');
    const console = guestConsole();
    await console.mark();
    expect((await attach(volumeId)).status).toBe(200);
    await waitFor(
      async () => (await liveMappings(volumeId))[0]?.status === 'attached' || undefined,
      'attached',
    );
    const disk = (
      await console.waitFor(
        new RegExp(`BLOCKDEV (vd[a-z]+) size=\\d+ serial=${volumeId.slice(0, 20)}`),
        'the disk',
      )
    )[1] as string;
    const [row] = await stack.query<{ backend_name: string }>(
      'SELECT backend_name FROM volumes WHERE id = $1',
      [volumeId],
    );
    await stack.tgtd.crashAndRestart();
    // the volume worker's export check restores the target, its account and ACL from its config
    await waitFor(
      async () => (await aclOf(volumeId)).includes('127.0.0.1') || undefined,
      'the export back',
      30_000,
    );
    const shell = await GuestShell.connect(join(stack.instancesPath, domain, 'shell.sock'));
    try {
      await shell.run(
        `echo AFTER-TGTD-RESTART | dd of=/dev/${disk} bs=512 seek=2048 conv=fsync 2>/dev/null`,
        90_000,
      );
    } finally {
      shell.close();
    }
    const backing = join(stack.volumesPath, row?.backend_name as string);
    await waitFor(
      () =>
        readFileSync(backing)
          .subarray(2048 * 512, 2048 * 512 + 18)
          .toString() === 'AFTER-TGTD-RESTART' || undefined,
      'the marker in the backing file',
      30_000,
    );
    expect((await settled(volumeId)).status).toBe('in-use');
    throughRestart = volumeId;
  }, 240_000);

  test('tgtd restarts during detaches: the exports of the detaching volumes come back and the detaches finish', async () => {
    const second = await createVolume('second-through-restart');
    const console = guestConsole();
    await console.mark();
    expect((await attach(second)).status).toBe(200);
    await waitFor(
      async () => (await liveMappings(second))[0]?.status === 'attached' || undefined,
      'attached',
    );
    // the guest has taken the disk in (one still probing it ignores an unplug: another test's matter)
    await console.waitFor(
      new RegExp(`BLOCKDEV vd[a-z]+ size=\\d+ serial=${second.slice(0, 20)}`),
      'the disk',
    );
    for (const id of [throughRestart, second]) {
      const res = await compute(`/servers/${server}/os-volume_attachments/${id}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
    }
    // the guest is being asked to let go of the first disk, the second waits its turn, when the targets vanish
    await stack.tgtd.crashAndRestart();
    for (const id of [throughRestart, second]) await expectNothingLeft(id);
  }, 180_000);

  test('20 attaches of one volume at once: one wins, the others get a 400, one disk', async () => {
    const volumeId = await createVolume('raced');
    const answers = await Promise.all(Array.from({ length: 20 }, () => attach(volumeId)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    for (const lost of answers.filter((a) => a.status !== 200)) {
      expect(lost.status).toBe(400);
      expect(lost.body.badRequest.message).toMatch(/status must be 'available'/);
    }
    await waitFor(
      async () => (await liveMappings(volumeId))[0]?.status === 'attached' || undefined,
      'attached',
    );
    await expectAttached(volumeId);
    expect((await virsh('dumpxml', domain)).split(`<serial>${volumeId}</serial>`).length - 1).toBe(1);
  }, 120_000);

  test('a delete and an attach of one volume at once: one wins, the other gets a 400', async () => {
    const volumeId = await createVolume('delete-or-attach');
    const [deleted, attached] = await Promise.all([
      volumeCall(`/volumes/${volumeId}`, { method: 'DELETE' }),
      attach(volumeId),
    ]);
    expect([deleted.status, attached.status].sort()).toEqual(
      deleted.status === 202 ? [202, 400] : [200, 400],
    );
    if (deleted.status === 202) {
      await waitForVolume(volumeApi(), token, volumeId, ['deleted'], 30_000);
      expect(await liveMappings(volumeId)).toEqual([]);
      expect(await aclOf(volumeId)).toEqual([]);
    } else {
      await waitFor(
        async () => (await liveMappings(volumeId))[0]?.status === 'attached' || undefined,
        'attached',
      );
      await expectAttached(volumeId);
    }
  }, 120_000);

  test('an extend and an attach of one volume at once: one wins, the other gets a 400', async () => {
    const volumeId = await createVolume('extend-or-attach');
    const [extended, attached] = await Promise.all([
      volumeCall(`/volumes/${volumeId}/action`, { method: 'POST', body: { 'os-extend': { new_size: 2 } } }),
      attach(volumeId),
    ]);
    expect([extended.status, attached.status].sort()).toEqual(
      extended.status === 202 ? [202, 400] : [200, 400],
    );
    if (extended.status === 202) {
      const volume = await waitForVolume(volumeApi(), token, volumeId, ['available'], 30_000);
      expect(volume.size).toBe(2);
      expect(await liveMappings(volumeId)).toEqual([]);
    } else {
      await waitFor(
        async () => (await liveMappings(volumeId))[0]?.status === 'attached' || undefined,
        'attached',
      );
      await expectAttached(volumeId);
      expect((await settled(volumeId)).size).toBe(1);
    }
  }, 120_000);

  test("kill -9 of the scheduler: restarted, it places a boot at once from the host's stored report", async () => {
    await stack.service('scheduler').kill();
    const worker = stack.service('compute-worker').pid as number;
    // the compute host reports nothing meanwhile: only what the database keeps of it can place the boot
    process.kill(worker, 'SIGSTOP');
    let other = '';
    try {
      await stack.startService('scheduler');
      const created = await compute('/servers', {
        method: 'POST',
        body: {
          server: {
            name: 'after-scheduler-restart',
            flavorRef: '1',
            imageRef: stack.imageId,
            networks: 'none',
          },
        },
        headers: { 'OpenStack-API-Version': 'compute 2.37' },
      });
      expect(created.status).toBe(202);
      other = created.body.server.id;
      const [placed] = await waitFor(
        async () => {
          const rows = await stack.query<{
            vm_state: string;
            task_state: string | null;
            host: string | null;
          }>(
            "SELECT vm_state, task_state, host FROM instances WHERE id = $1 AND task_state IS DISTINCT FROM 'scheduling'",
            [other],
          );
          return rows.length > 0 ? rows : undefined;
        },
        'the boot placed',
        30_000,
      );
      expect(placed).toEqual({ vm_state: 'building', task_state: 'spawning', host: stack.host });
      // not booted: one guest is all this file needs
      expect((await compute(`/servers/${other}`, { method: 'DELETE' })).status).toBe(204);
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    await waitFor(
      async () => (await compute(`/servers/${other}`)).status === 404 || undefined,
      'the second server gone',
      60_000,
    );
    expect(await stack.libvirt?.domains()).toEqual([domain]);
  }, 120_000);

  test('a delete whose message was lost is finished: nothing of the server is left, its volumes available', async () => {
    const attachedIds = (await liveAttachedVolumes()).map((r) => r.volume_id);
    expect(attachedIds.length).toBeGreaterThan(0);
    await stack.query("UPDATE instances SET task_state = 'deleting', updated_at = now() WHERE id = $1", [
      server,
    ]);
    await serverIn(['DELETED']);
    expect(await stack.libvirt?.domains()).toEqual([]);
    expect(existsSync(join(stack.instancesPath, domain))).toBe(false);
    for (const id of attachedIds) {
      expect((await settled(id)).status).toBe('available');
      expect(await secretsOf(id)).toEqual([]);
      expect(await aclOf(id)).toEqual([]);
    }
    // and the reconciler finds nothing of it
    const report = await stack.basalt('reconcile', '--dry-run', '--host', stack.host);
    expect(report).not.toContain(domain);
  }, 120_000);

  const liveAttachedVolumes = () =>
    stack.query<{ volume_id: string }>(
      'SELECT volume_id FROM block_device_mappings WHERE instance_uuid = $1 AND NOT deleted',
      [server],
    );
});
