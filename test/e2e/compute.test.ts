import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openProviderAuth, SecretBox, sealProviderAuth } from '@basalt/db';
import { GuestConsole, GuestShell } from '../support/guest';
import { type ApiResponse, passwordToken, request, waitForVolume } from '../support/http';
import { waitFor } from '../support/rpc';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const GiB = 2 ** 30;
/** How long a TCG guest may take to boot or see a new disk: minutes where other work shares the cores. */
const GUEST_WAIT_MS = 300_000;

/**
 * The compute half end to end: api, scheduler, volume-worker and compute-worker as processes, a
 * real tgtd, libvirtd and QEMU (TCG), the test image booted from disk. Guests are few and reused:
 * vm1 (m1.tiny) and vm2 (m1.small) over HTTP, vm3 through python-openstackclient. vm2 carries the
 * volume through a hard reboot, a soft one and a restart of its compute worker.
 */
describe('instances and their volumes', () => {
  const stack = new VolumeStack({ authStrategy: 'builtin', compute: true });
  const tokens: Record<string, string> = {};
  const projects: Record<string, string> = {};
  const servers: Record<string, { id: string; name: string; guest: Guest }> = {};

  /** A test guest: its console, and its root shell's socket. */
  interface Guest {
    readonly console: GuestConsole;
    readonly shellSocket: string;
  }
  let volume1 = '';

  const compute = (user: string, path: string, init: Parameters<typeof request>[1] = {}) =>
    request(`${stack.computeUrl}/v2.1${path}`, { token: tokens[user] as string, ...init });
  const volumes = (user: string) => `${stack.volumeUrl}/v3/${projects[user]}`;
  const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
  const domain = async (id: string) =>
    (await compute('admin', `/servers/${id}`)).body.server['OS-EXT-SRV-ATTR:instance_name'] as string;
  const domblklist = async (id: string) =>
    (await virsh('domblklist', await domain(id)))
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
  const acl = async () => {
    const out = await stack.tgtd.targets();
    return [...out.matchAll(/ACL information:\n((?:\s{8}\S+\n)*)/g)].flatMap((m) =>
      (m[1] ?? '')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
  };
  /** The libvirt secrets of this test's volumes (the shared libvirtd holds other runs' too). */
  const secrets = async () =>
    (await virsh('secret-list'))
      .split('\n')
      .filter((l) => volume1 !== '' && l.includes(`basalt-volume-${volume1}`));

  async function waitForServer(user: string, id: string, statuses: string[], timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    let last: ApiResponse | undefined;
    while (Date.now() < deadline) {
      last = await compute(user, `/servers/${id}`);
      if (last.status === 404 && statuses.includes('DELETED')) return undefined;
      if (last.status === 200 && statuses.includes(last.body.server.status)) return last.body.server;
      if (last.status === 200 && last.body.server.status === 'ERROR' && !statuses.includes('ERROR')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`server ${id} never reached ${statuses.join('|')}: ${JSON.stringify(last?.body)}`);
  }

  async function boot(name: string, flavorRef: string) {
    const created = await compute('alice', '/servers', {
      method: 'POST',
      body: { server: { name, flavorRef, imageRef: stack.imageId, networks: 'none' } },
      headers: { 'OpenStack-API-Version': 'compute 2.37' },
    });
    expect(created.status).toBe(202);
    return created.body.server.id as string;
  }

  function guestOf(instanceName: string): Guest {
    const dir = join(stack.instancesPath, instanceName);
    return { console: new GuestConsole(join(dir, 'console.log')), shellSocket: join(dir, 'shell.sock') };
  }

  /** Runs a line in the guest's shell (a new connection each time: a reboot ends the old one). */
  async function sh(guest: Guest, line: string): Promise<string> {
    const shell = await GuestShell.connect(guest.shellSocket);
    try {
      return await shell.run(line);
    } finally {
      shell.close();
    }
  }

  /** The guest's name of the disk whose serial is (the start of) the volume id, seen since the console's mark. */
  async function guestDisk(guest: Guest, volumeId: string, bytes = GiB): Promise<string> {
    const match = await guest.console.waitFor(
      new RegExp(`BLOCKDEV (vd[a-z]+) size=${bytes} serial=${volumeId.slice(0, 20)}`),
      `volume ${volumeId} in the guest`,
      GUEST_WAIT_MS,
    );
    return match[1] as string;
  }

  /**
   * After the guest booted again: the name it gave the volume's disk in that boot. `before` is the
   * console as it was before the reboot; libvirt may start the file over or go on after it.
   */
  async function diskAfterBoot(guest: Guest, before: string, volumeId: string): Promise<string> {
    const disk = new RegExp(`BLOCKDEV (vd[a-z]+) size=${GiB} serial=${volumeId.slice(0, 20)}`);
    return waitFor(
      async () => {
        const now = await guest.console.text();
        const fresh = now.startsWith(before) ? now.slice(before.length) : now;
        const boot = fresh.lastIndexOf('BOOTED');
        return boot < 0 ? undefined : disk.exec(fresh.slice(boot))?.[1];
      },
      `volume ${volumeId} in the rebooted guest`,
      GUEST_WAIT_MS,
    );
  }

  /** The volume once it is `in-use` with its attachment naming the server. */
  async function waitForAttachment(volumeId: string) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const volume = await waitForVolume(volumes('alice'), tokens.alice as string, volumeId, ['in-use']);
      if (volume.attachments.length > 0 || Date.now() > deadline) return volume;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The 16 bytes at 1 MiB into the guest's disk, where the marker is written. */
  async function marker(guest: Guest, disk: string): Promise<string> {
    return (await sh(guest, `dd if=/dev/${disk} bs=512 skip=2048 count=1 2>/dev/null | head -c 16`)).trim();
  }

  async function attach(user: string, serverId: string, volumeId: string) {
    return compute(user, `/servers/${serverId}/os-volume_attachments`, {
      method: 'POST',
      body: { volumeAttachment: { volumeId } },
    });
  }

  beforeAll(async () => {
    await stack.start();
    for (const [user, password, project] of [
      ['alice', 'alicepass', 'demo'],
      ['bob', 'bobpass', 'other'],
      ['admin', 'adminpass', 'admin'],
    ] as const) {
      const { token, projectId } = await passwordToken(stack.identityUrl, user, password, project);
      tokens[user] = token;
      projects[user] = projectId;
    }
  }, 360_000);
  afterAll(() => stack.stop(), 120_000);

  test('1. volume1 is created', async () => {
    const res = await request(`${volumes('alice')}/volumes`, {
      method: 'POST',
      token: tokens.alice,
      body: { volume: { size: 1, name: 'volume1' } },
    });
    expect(res.status).toBe(202);
    volume1 = res.body.volume.id;
    await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['available']);
  }, 30_000);

  test('2. vm1 (m1.tiny) and vm2 (m1.small) boot from the image over qcow2 disks', async () => {
    const ids = { vm1: await boot('vm1', '1'), vm2: await boot('vm2', '2') };
    for (const [name, id] of Object.entries(ids)) {
      const server = await waitForServer('alice', id, ['ACTIVE']);
      expect(server).toMatchObject({ name, status: 'ACTIVE', image: { id: stack.imageId } });
      // members do not see where it runs
      expect(server['OS-EXT-SRV-ATTR:instance_name']).toBeUndefined();
      const instance = await domain(id);
      expect(instance).toMatch(new RegExp(`^${stack.libvirt?.prefix}-[0-9a-f]{8}$`));
      servers[name] = { id, name, guest: guestOf(instance) };
    }
    const base = join(stack.instancesPath, '_base');
    const sha1 = createHash('sha1').update(stack.imageId).digest('hex');
    const chain = async (file: string) =>
      JSON.parse(
        (await run('qemu-img', ['info', '-U', '--backing-chain', '--output=json', file])).stdout,
      ) as Array<{
        filename: string;
        format: string;
        'virtual-size': number;
      }>;
    for (const vm of ['vm1', 'vm2'] as const) {
      const dir = join(stack.instancesPath, await domain(servers[vm]?.id as string));
      for (const file of ['disk', 'console.log', 'libvirt.xml'])
        expect(existsSync(join(dir, file))).toBe(true);
      const root = await chain(join(dir, 'disk'));
      expect(root[0]?.format).toBe('qcow2');
      expect(root[1]?.filename).toBe(vm === 'vm1' ? join(base, sha1) : join(base, `${sha1}_10`));
      if (vm === 'vm2') expect(root[0]?.['virtual-size']).toBe(10 * GiB);
      expect(existsSync(join(dir, 'disk.local'))).toBe(vm === 'vm2');
    }
    const local = await chain(
      join(stack.instancesPath, await domain(servers.vm2?.id as string), 'disk.local'),
    );
    expect(local[1]?.filename).toBe(join(base, 'ephemeral_0_20_None'));
    expect(local[1]?.['virtual-size']).toBe(20 * GiB);
    const probe = (await run('blkid', ['-o', 'export', join(base, 'ephemeral_0_20_None')])).stdout;
    expect(probe).toMatch(/LABEL=ephemeral0/);
    expect(probe).toMatch(/TYPE=ext3/);

    expect(await domblklist(servers.vm1?.id as string)).toEqual(['vda']);
    expect(await domblklist(servers.vm2?.id as string)).toEqual(['vda', 'vdb']);
    await servers.vm1?.guest.console.waitFor(/BLOCKDEVS t=\S+ vda\r?\n/, 'vm1 to boot', GUEST_WAIT_MS);
    await servers.vm2?.guest.console.waitFor(/BLOCKDEVS t=\S+ vda vdb\r?\n/, 'vm2 to boot', GUEST_WAIT_MS);
  }, 600_000);

  test('3. volume1 attached to vm2 is a new disk in the guest; the guest writes a marker', async () => {
    await servers.vm2?.guest.console.mark();
    const res = await attach('alice', servers.vm2?.id as string, volume1);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      volumeAttachment: { id: volume1, volumeId: volume1, serverId: servers.vm2?.id, device: '/dev/vdc' },
    });
    const attached = await waitForAttachment(volume1);
    expect(attached.attachments).toEqual([
      expect.objectContaining({ server_id: servers.vm2?.id, volume_id: volume1, device: '/dev/vdc' }),
    ]);
    expect(await domblklist(servers.vm2?.id as string)).toEqual(['vda', 'vdb', 'vdc']);
    expect(await acl()).toEqual(['127.0.0.1']);
    const guest = servers.vm2?.guest as Guest;
    const disk = await guestDisk(guest, volume1);
    await sh(guest, `echo BASALT-MARKER-42 | dd of=/dev/${disk} bs=512 seek=2048 conv=fsync 2>/dev/null`);
    expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
    const listed = await compute('alice', `/servers/${servers.vm2?.id}/os-volume_attachments`);
    expect(listed.body.volumeAttachments).toHaveLength(1);
    expect(
      (await compute('alice', `/servers/${servers.vm2?.id}`)).body.server[
        'os-extended-volumes:volumes_attached'
      ],
    ).toEqual([{ id: volume1 }]);
  }, 420_000);

  test('4. a hard reboot keeps the volume: still attached, the marker readable', async () => {
    const guest = servers.vm2?.guest as Guest;
    const before = await guest.console.text();
    const res = await compute('alice', `/servers/${servers.vm2?.id}/action`, {
      method: 'POST',
      body: { reboot: { type: 'HARD' } },
    });
    expect(res.status).toBe(202);
    await waitForServer('alice', servers.vm2?.id as string, ['ACTIVE']);
    expect(await domblklist(servers.vm2?.id as string)).toEqual(['vda', 'vdb', 'vdc']);
    // the guest booted again and found the volume again
    const disk = await diskAfterBoot(guest, before, volume1);
    expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
    expect((await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['in-use'])).status).toBe(
      'in-use',
    );
  }, 420_000);

  test('4b. a soft reboot: the guest powers itself off on ACPI and boots again, the volume kept', async () => {
    const vm2 = servers.vm2?.id as string;
    const guest = servers.vm2?.guest as Guest;
    const before = await guest.console.text();
    const res = await compute('alice', `/servers/${vm2}/action`, {
      method: 'POST',
      body: { reboot: { type: 'SOFT' } },
    });
    expect(res.status).toBe(202);
    await waitForServer('alice', vm2, ['ACTIVE']);
    // the guest shut itself down (no fallback to a hard reboot), then booted a second time
    const worker = stack.service('compute-worker');
    await worker.waitForLog(
      new RegExp(`"instance_uuid":"${vm2}","type":"SOFT"[^\n]*"msg":"instance rebooted"`),
    );
    const disk = await diskAfterBoot(guest, before, volume1);
    const now = await guest.console.text();
    const fresh = now.startsWith(before) ? now.slice(before.length) : now;
    expect(fresh.indexOf('POWER BUTTON: powering off')).toBeGreaterThanOrEqual(0);
    expect(fresh.indexOf('BOOTED')).toBeGreaterThan(fresh.indexOf('POWER BUTTON'));
    expect(await domblklist(vm2)).toEqual(['vda', 'vdb', 'vdc']);
    expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
    const volume = await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['in-use']);
    expect(volume.attachments).toEqual([expect.objectContaining({ server_id: vm2, device: '/dev/vdc' })]);
  }, 420_000);

  test('a restarted compute worker rebuilds a powered-off guest from the database, volume and all', async () => {
    const vm2 = servers.vm2?.id as string;
    const name = await domain(vm2);
    const guest = servers.vm2?.guest as Guest;
    expect(await stack.service('compute-worker').stop()).toBe(0);
    // the host lost its guests meanwhile (a power cut): only the database remembers vm2's volume
    await virsh('destroy', name);
    const before = await guest.console.text();
    await stack.startService('compute-worker');
    expect((await virsh('domstate', name)).trim()).toBe('running');
    expect(await domblklist(vm2)).toEqual(['vda', 'vdb', 'vdc']);
    const disk = await diskAfterBoot(guest, before, volume1);
    expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
    expect((await waitForServer('alice', vm2, ['ACTIVE'])).status).toBe('ACTIVE');
  }, 420_000);

  test('volume1 extended while attached to vm2 (volume 3.42): the guest sees the new size, the instance action its event', async () => {
    const vm2 = servers.vm2?.id as string;
    const guest = servers.vm2?.guest as Guest;
    const extend = (version: string) =>
      request(`${volumes('alice')}/volumes/${volume1}/action`, {
        token: tokens.alice as string,
        method: 'POST',
        body: { 'os-extend': { new_size: 2 } },
        headers: { 'OpenStack-API-Version': `volume ${version}` },
      });
    // before 3.42 an attached volume does not grow
    expect((await extend('3.41')).status).toBe(400);
    const extended = await extend('3.42');
    expect(extended.status).toBe(202);
    const requestId = extended.headers.get('x-openstack-request-id') as string;
    const grown = await waitFor(async () => {
      const v = await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['in-use']);
      return v.size === 2 ? v : undefined;
    }, 'volume1 to be 2 GB and in-use');
    expect(grown.attachments).toHaveLength(1);
    // the guest's own view of the disk: its size in 512-byte sectors, from the kernel
    const serial = volume1.slice(0, 20);
    const disk = (
      await sh(
        guest,
        `for d in /sys/block/vd*; do [ "$(cat $d/serial)" = ${serial} ] && echo \${d##*/}; done`,
      )
    ).trim();
    expect(disk).toMatch(/^vd[a-z]$/);
    const sectors = await waitFor(
      async () => {
        const n = Number((await sh(guest, `cat /sys/block/${disk}/size`)).trim());
        return n * 512 === 2 * GiB ? n : undefined;
      },
      "the guest's disk to grow",
      60_000,
    );
    expect(sectors * 512).toBe(2 * GiB);
    expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
    // nova's record of it: the action under the extend's request, its event finished for admins
    const listed = await compute('alice', `/servers/${vm2}/os-instance-actions`);
    expect(listed.status).toBe(200);
    expect(listed.body.instanceActions).toContainEqual({
      action: 'extend_volume',
      instance_uuid: vm2,
      request_id: requestId,
      user_id: expect.any(String),
      project_id: expect.any(String),
      message: null,
      start_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/),
    });
    const shown = await waitFor(async () => {
      const res = await compute('admin', `/servers/${vm2}/os-instance-actions/${requestId}`);
      return res.body.instanceAction?.events?.[0]?.finish_time ? res : undefined;
    }, 'the compute_extend_volume event to finish');
    expect(shown.body.instanceAction.events).toEqual([
      {
        event: 'compute_extend_volume',
        start_time: expect.any(String),
        finish_time: expect.any(String),
        result: 'Success',
        traceback: null,
      },
    ]);
    // the events are an admin's to see
    const asOwner = await compute('alice', `/servers/${vm2}/os-instance-actions/${requestId}`);
    expect(asOwner.status).toBe(200);
    expect(asOwner.body.instanceAction.events).toBeUndefined();
    // only admins (and services) send external events
    const event = { events: [{ name: 'volume-extended', server_uuid: vm2, tag: volume1 }] };
    expect(
      (await compute('alice', '/os-server-external-events', { method: 'POST', body: event })).status,
    ).toBe(403);
  }, 180_000);

  test('5. detach, then delete vm2: volume1 is available, nothing of vm2 is left', async () => {
    const vm2 = servers.vm2?.id as string;
    const name = await domain(vm2);
    const res = await compute('alice', `/servers/${vm2}/os-volume_attachments/${volume1}`, {
      method: 'DELETE',
    });
    expect(res.status).toBe(202);
    await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['available']);
    expect(await domblklist(vm2)).toEqual(['vda', 'vdb']);
    expect(await acl()).toEqual([]);
    expect(await secrets()).toEqual([]);
    expect((await compute('alice', `/servers/${vm2}`, { method: 'DELETE' })).status).toBe(204);
    await waitForServer('alice', vm2, ['DELETED']);
    expect(await virsh('list', '--all', '--name')).not.toContain(name);
    expect(existsSync(join(stack.instancesPath, name))).toBe(false);
    expect(existsSync(join(stack.instancesPath, '_base', 'ephemeral_0_20_None'))).toBe(true);
  }, 120_000);

  test("bad requests are 4xx in Nova's shape", async () => {
    const vm1 = servers.vm1?.id as string;
    const unknownFlavor = await compute('alice', '/servers', {
      method: 'POST',
      body: { server: { name: 'x', flavorRef: '99', imageRef: stack.imageId } },
    });
    expect(unknownFlavor.status).toBe(400);
    expect(unknownFlavor.body.badRequest.message).toMatch(/Flavor 99 could not be found/);
    const unknownImage = await compute('alice', '/servers', {
      method: 'POST',
      body: { server: { name: 'x', flavorRef: '1', imageRef: '00000000-0000-4000-8000-000000000000' } },
    });
    expect(unknownImage.status).toBe(400);
    // bob sees neither alice's server nor may he attach to it
    expect((await compute('bob', `/servers/${vm1}`)).body).toEqual({
      itemNotFound: { code: 404, message: `Instance ${vm1} could not be found.` },
    });
    expect((await attach('bob', vm1, volume1)).status).toBe(404);
    // bob's own volume cannot go onto alice's server, nor alice's onto his
    const bobs = await request(`${volumes('bob')}/volumes`, {
      method: 'POST',
      token: tokens.bob,
      body: { volume: { size: 1, name: 'bobs' } },
    });
    await waitForVolume(volumes('bob'), tokens.bob as string, bobs.body.volume.id, ['available']);
    expect((await attach('alice', vm1, bobs.body.volume.id)).status).toBe(404);
    // a server in the wrong state
    const none = await compute('alice', '/servers', {
      method: 'POST',
      body: { server: { name: 'nohost', flavorRef: '5', imageRef: stack.imageId } },
    });
    const failed = await waitForServer('alice', none.body.server.id, ['ERROR']);
    expect(failed.fault.message).toMatch(/No valid host was found/);
    const wrongState = await attach('alice', none.body.server.id, volume1);
    expect(wrongState.status).toBe(409);
    expect(wrongState.body.conflictingRequest.code).toBe(409);
    expect((await compute('alice', `/servers/${none.body.server.id}`, { method: 'DELETE' })).status).toBe(
      204,
    );
    await waitForServer('alice', none.body.server.id, ['DELETED']);
  }, 120_000);

  test('two attaches of one volume at once: exactly one wins', async () => {
    const vm1 = servers.vm1?.id as string;
    const guest = servers.vm1?.guest as Guest;
    await guest.console.mark();
    const [a, b] = await Promise.all([attach('alice', vm1, volume1), attach('alice', vm1, volume1)]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 400]);
    const loser = a.status === 400 ? a : b;
    expect(loser.body.badRequest.message).toMatch(/must be 'available'/);
    await waitForAttachment(volume1);
    expect(await domblklist(vm1)).toEqual(['vda', 'vdb']);
    // attaching an in-use volume is refused too
    expect((await attach('alice', vm1, volume1)).status).toBe(400);
    // a guest asked to let go of a disk it is still bringing up ignores the request: let it settle
    await guestDisk(guest, volume1, 2 * GiB);
    expect(
      (await compute('alice', `/servers/${vm1}/os-volume_attachments/${volume1}`, { method: 'DELETE' }))
        .status,
    ).toBe(202);
    await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['available']);
    expect(await domblklist(vm1)).toEqual(['vda']);
  }, 120_000);

  test('an attach that fails midway (a wrong CHAP secret) leaves no secret, no ACL entry, no attachment', async () => {
    const vm1 = servers.vm1?.id as string;
    const [row] = await stack.query<{ provider_auth: string }>(
      'SELECT provider_auth FROM volumes WHERE id = $1',
      [volume1],
    );
    // the stored secret is sealed for its row: a wrong one is sealed the same way
    const box = new SecretBox([stack.secretKey]);
    const [method, user] = openProviderAuth(box, volume1, String(row?.provider_auth)).split(' ');
    await stack.query('UPDATE volumes SET provider_auth = $2 WHERE id = $1', [
      volume1,
      sealProviderAuth(box, volume1, `${method} ${user} WrongSecret123456789`),
    ]);
    try {
      expect((await attach('alice', vm1, volume1)).status).toBe(200);
      await stack.service('compute-worker').waitForLog(/"attach failed"/, 60_000);
      await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['available']);
    } finally {
      await stack.query('UPDATE volumes SET provider_auth = $2 WHERE id = $1', [volume1, row?.provider_auth]);
    }
    expect(await domblklist(vm1)).toEqual(['vda']);
    expect(await secrets()).toEqual([]);
    expect(await acl()).toEqual([]);
    expect(
      await stack.query('SELECT id FROM volume_attachments WHERE volume_id = $1 AND NOT deleted', [volume1]),
    ).toEqual([]);
    expect((await compute('alice', `/servers/${vm1}/os-volume_attachments`)).body.volumeAttachments).toEqual(
      [],
    );
  }, 120_000);

  describe('6. python-openstackclient boots vm3 and gives it volume1: the guest reads the marker', () => {
    const openstack = async (...args: string[]) =>
      (
        await run(
          '/usr/bin/openstack',
          [
            '--os-auth-url',
            `${stack.identityUrl}/v3`,
            '--os-identity-api-version',
            '3',
            '--os-username',
            'alice',
            '--os-password',
            'alicepass',
            '--os-project-name',
            'demo',
            '--os-user-domain-name',
            'Default',
            '--os-project-domain-name',
            'Default',
            ...args,
          ],
          { timeout: 180_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
        )
      ).stdout;

    test('server create, add volume, volume list, remove volume, delete', async () => {
      expect(JSON.parse(await openstack('image', 'list', '-f', 'json'))).toEqual([
        expect.objectContaining({ ID: stack.imageId, Name: 'basalt-test', Status: 'active' }),
      ]);
      const created = JSON.parse(
        await openstack(
          'server',
          'create',
          '--flavor',
          'm1.tiny',
          '--image',
          'basalt-test',
          '--wait',
          'vm3',
          '-f',
          'json',
        ),
      );
      expect(created).toMatchObject({ name: 'vm3', status: 'ACTIVE' });
      const guest = guestOf(await domain(created.id));
      await guest.console.waitFor(/BLOCKDEVS t=\S+ vda\r?\n/, 'vm3 to boot', GUEST_WAIT_MS);
      await openstack('server', 'add', 'volume', 'vm3', 'volume1');
      await waitForAttachment(volume1);
      // the table names the server, as the seed's `nova volume-list` did
      expect(await openstack('volume', 'list')).toMatch(
        /volume1\s+\|\s+in-use\s+\|\s+2\s+\|\s+Attached to vm3 on \/dev\/vdb\s/,
      );
      const disk = await guestDisk(guest, volume1, 2 * GiB);
      expect(await marker(guest, disk)).toBe('BASALT-MARKER-42');
      await openstack('server', 'remove', 'volume', 'vm3', 'volume1');
      await waitForVolume(volumes('alice'), tokens.alice as string, volume1, ['available']);
      await openstack('server', 'delete', '--wait', 'vm3');
      expect(JSON.parse(await openstack('server', 'list', '-f', 'json'))).toEqual([
        expect.objectContaining({ Name: 'vm1' }),
      ]);
    }, 600_000);
  });
});
