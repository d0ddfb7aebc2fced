import { execFile } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type ConnectionInfo, type VolumeRpcApi, volumeRpcApi } from '@basalt/contracts';
import { createDataSource, VOLUME_STATES, VolumeRepository } from '@basalt/db';
import { request, waitForVolume } from '../support/http';
import { ROOT } from '../support/processes';
import { testContext, waitFor } from '../support/rpc';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const connector = { ip: '127.0.0.1', initiator: 'iqn.2026-11.test:client', host: 'test-client' };

/** An iSCSI URL for libiscsi / QEMU; the password is the test's own, for a target it created. */
const iscsiUrl = (info: ConnectionInfo, user = info.data.auth_username, password = info.data.auth_password) =>
  `iscsi://${user}%${password}@${info.data.target_portal}/${info.data.target_iqn}/${info.data.target_lun}`;

describe('a volume through its whole life, over real tgt and libiscsi', () => {
  const stack = new VolumeStack();
  const token = 'tester:proj1';
  let api = '';
  let volumeRpc: VolumeRpcApi;

  beforeAll(async () => {
    await stack.start();
    api = `${stack.volumeUrl}/v3/proj1`;
    volumeRpc = volumeRpcApi((await stack.broker.transport(stack.rpc)).client);
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const create = async (size: number, name: string) => {
    const created = await request(`${api}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size, name } },
    });
    expect(created.status).toBe(202);
    return waitForVolume(api, token, created.body.volume.id, ['available']);
  };

  test('create, connect, read and write over iSCSI, extend, disconnect, delete', async () => {
    const volume = await create(1, 'data');
    const [name] = (await run('ls', [stack.volumesPath])).stdout.trim().split('\n');
    expect(name).toMatch(/^volume-[0-9a-f]{8}$/);
    const file = join(stack.volumesPath, name as string);
    expect(statSync(file).size).toBe(GiB);
    const config = join(stack.volumesDir, name as string);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(readFileSync(config, 'utf8')).toMatch(/incominguser [A-Za-z0-9]+ [A-Za-z0-9]+/);
    expect(await stack.tgtd.targets()).toContain(`iqn.2010-10.org.openstack:${name}`);

    const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    expect(info).toMatchObject({
      driver_volume_type: 'iscsi',
      data: {
        target_portal: `127.0.0.1:${stack.tgtd.port}`,
        target_iqn: `iqn.2010-10.org.openstack:${name}`,
        target_lun: 1,
        auth_method: 'CHAP',
      },
    });
    expect(readFileSync(config, 'utf8')).toContain('initiator-address 127.0.0.1');

    const inq = await run('iscsi-inq', [iscsiUrl(info)]);
    expect(inq.stdout).toContain('DIRECT_ACCESS');
    const capacity = await run('iscsi-readcapacity16', ['-s', iscsiUrl(info)]);
    expect(capacity.stdout.trim()).toBe(String(GiB));

    // bytes written through iSCSI land in the backing store
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 1M 64k', iscsiUrl(info)]);
    const bytes = Buffer.alloc(16);
    readSync(openSync(file, 'r'), bytes, 0, 16, 1024 * 1024);
    expect([...bytes]).toEqual(Array(16).fill(0xab));

    // a wrong CHAP secret is refused
    const refused = await run('iscsi-inq', [
      iscsiUrl(info, info.data.auth_username, 'WrongSecret12345'),
    ]).catch((e) => e);
    expect(refused.code).not.toBe(0);
    expect(String(refused.stderr)).toMatch(/Authentication failure/);

    // extend grows the backing store and the LUN
    const extended = await request(`${api}/volumes/${volume.id}/action`, {
      method: 'POST',
      token,
      body: { 'os-extend': { new_size: 2 } },
    });
    expect(extended.status).toBe(202);
    const grown = await waitForVolume(api, token, volume.id, ['available']);
    expect(grown.size).toBe(2);
    expect(statSync(file).size).toBe(2 * GiB);
    expect((await run('iscsi-readcapacity16', ['-s', iscsiUrl(info)])).stdout.trim()).toBe(String(2 * GiB));

    // disconnecting removes the initiator from the ACL
    await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
    expect(readFileSync(config, 'utf8')).not.toContain('initiator-address');
    const noAcl = await run('iscsi-inq', [iscsiUrl(info)]).catch((e) => e);
    expect(noAcl.code).not.toBe(0);

    const deleted = await request(`${api}/volumes/${volume.id}`, { method: 'DELETE', token });
    expect(deleted.status).toBe(202);
    await waitForVolume(api, token, volume.id, ['deleted']);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(config)).toBe(false);
    expect(await stack.tgtd.targets()).not.toContain(name);
    expect(await stack.tgtd.accounts()).not.toContain(info.data.auth_username);
  }, 90_000);

  test('a tgtd crash loses no export: the running worker restores it by itself', async () => {
    const volume = await create(1, 'survivor');
    const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    await stack.tgtd.crashAndRestart();
    // export_check_interval is 0.5 s in the test stack
    await waitFor(
      async () => (await stack.tgtd.targets()).includes(info.data.target_iqn) || undefined,
      'export back',
    );
    expect((await run('iscsi-inq', [iscsiUrl(info)])).stdout).toContain('DIRECT_ACCESS');
    expect(stack.service('volume-worker').log).toContain('"msg":"export restored"');
  }, 90_000);

  test('a tgtd that restarted while the worker was down gets every export back when it starts', async () => {
    const volume = await create(1, 'patient-export');
    const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    await stack.service('volume-worker').stop();
    await stack.tgtd.crashAndRestart();
    expect(await stack.tgtd.targets()).toBe('');
    await stack.startService('volume-worker');
    expect(await stack.tgtd.targets()).toContain(info.data.target_iqn);
    expect((await run('iscsi-inq', [iscsiUrl(info)])).stdout).toContain('DIRECT_ACCESS');
  }, 90_000);

  test('attach and detach as a compute host makes them: connect, attach, in-use; disconnect, detach, available', async () => {
    const volume = await create(1, 'attached');
    const instanceUuid = '5d3c1f3e-7a51-4c36-9d3b-0c2f6a9e8b41';
    const show = async () => (await request(`${api}/volumes/${volume.id}`, { token })).body.volume;
    const ds = createDataSource({ url: stack.database.url, poolSize: 1 });
    await ds.initialize();
    try {
      const volumes = new VolumeRepository(ds);
      // the compute API's reservations, before it asks its host (an admin's reset stands in for them)
      const reserve = (status: 'attaching' | 'detaching') =>
        volumes.transitionOrThrow(volume.id, VOLUME_STATES.toward(VOLUME_STATES.moves.reset, status));
      await reserve('attaching');
      const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
        volume_id: volume.id,
        connector,
      });
      const attachment = {
        volume_id: volume.id,
        instance_uuid: instanceUuid,
        mountpoint: '/dev/vdb',
        connector,
      };
      await volumeRpc.attach_volume(testContext(), stack.host, attachment);
      // sent again (a retry of the compute host): harmless
      await volumeRpc.attach_volume(testContext(), stack.host, attachment);
      const attached = await show();
      expect(attached).toMatchObject({ status: 'in-use' });
      expect(attached.attachments).toEqual([
        expect.objectContaining({ server_id: instanceUuid, host_name: 'test-client', device: '/dev/vdb' }),
      ]);
      expect((await run('iscsi-inq', [iscsiUrl(info)])).stdout).toContain('DIRECT_ACCESS');
      // another instance cannot take the same connection
      await expect(
        volumeRpc.attach_volume(testContext(), stack.host, { ...attachment, instance_uuid: volume.id }),
      ).rejects.toThrow(/already attached/);

      await reserve('detaching');
      await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
      await volumeRpc.detach_volume(testContext(), stack.host, { volume_id: volume.id });
      expect(await show()).toMatchObject({ status: 'available', attachments: [] });

      // an attach that failed on the compute host rolls back the same way
      await reserve('attaching');
      await volumeRpc.initialize_connection(testContext(), stack.host, { volume_id: volume.id, connector });
      await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
      await volumeRpc.detach_volume(testContext(), stack.host, { volume_id: volume.id });
      expect(await show()).toMatchObject({ status: 'available', attachments: [] });
    } finally {
      await ds.destroy();
    }
    expect((await request(`${api}/volumes/${volume.id}`, { method: 'DELETE', token })).status).toBe(202);
    await waitForVolume(api, token, volume.id, ['deleted']);
  }, 60_000);

  /** The worker's log lines about `volumeId` saying `msg`, once there are `count` of them. */
  const workerSaid = (volumeId: string, msg: string, count = 1) =>
    waitFor(() => {
      const lines = stack
        .service('volume-worker')
        .log.split('\n')
        .filter((l) => l.includes(`"volume_id":"${volumeId}"`) && l.includes(`"msg":"${msg}"`));
      return lines.length >= count ? lines : undefined;
    }, `${count} × "${msg}" for ${volumeId} in the volume worker's log`);

  test('redelivered requests are harmless: create, extend and delete sent twice', async () => {
    const volume = await create(1, 'twice');
    // what the worker logs from here on: the other tests' deliberate failures are not this one's
    const logFrom = stack.service('volume-worker').log.length;
    const before = await stack.tgtd.targets();
    await volumeRpc.create_volume(testContext(), stack.host, { volume_id: volume.id });
    await volumeRpc.extend_volume(testContext(), stack.host, { volume_id: volume.id, new_size: 5 });
    // the worker handled both and found nothing to do
    await workerSaid(volume.id, 'nothing to create');
    await workerSaid(volume.id, 'nothing to extend');
    const after = (await request(`${api}/volumes/${volume.id}`, { token })).body.volume;
    expect(after).toMatchObject({ status: 'available', size: 1 });
    expect(await stack.tgtd.targets()).toBe(before);
    await request(`${api}/volumes/${volume.id}`, { method: 'DELETE', token });
    await waitForVolume(api, token, volume.id, ['deleted']);
    await volumeRpc.delete_volume(testContext(), stack.host, { volume_id: volume.id });
    await volumeRpc.create_volume(testContext(), stack.host, { volume_id: volume.id });
    await workerSaid(volume.id, 'nothing to delete');
    await workerSaid(volume.id, 'nothing to create', 2);
    expect((await request(`${api}/volumes/${volume.id}`, { token })).status).toBe(404);
    expect(stack.service('volume-worker').log.slice(logFrom)).not.toMatch(/"level":50/);
  }, 60_000);

  test('a volume whose stored CHAP secret no longer opens, with no target config to recover it from, is refused connections but still extends and deletes, leaving nothing in tgtd', async () => {
    const volume = await create(1, 'sealed-away');
    const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
    const user = info.data.auth_username;
    const password = info.data.auth_password;
    // the account stays bound to the target once the initiator is out of the ACL
    expect(await stack.tgtd.targets()).toMatch(new RegExp(`Account information:\\s+${user}`));
    const [row] = await stack.query<{ backend_name: string }>(
      'SELECT backend_name FROM volumes WHERE id = $1',
      [volume.id],
    );
    const name = row?.backend_name as string;
    // sealed under a key that is gone, and the second source, its target's config, lost too
    await stack.query(
      "UPDATE volumes SET provider_auth = regexp_replace(provider_auth, '^enc:v1:[^:]+:', 'enc:v1:gone:') WHERE id = $1",
      [volume.id],
    );
    rmSync(join(stack.volumesDir, name));
    await expect(
      volumeRpc.initialize_connection(testContext(), stack.host, { volume_id: volume.id, connector }),
    ).rejects.toThrow('stored CHAP secret cannot be opened');

    const extended = await request(`${api}/volumes/${volume.id}/action`, {
      method: 'POST',
      token,
      body: { 'os-extend': { new_size: 2 } },
    });
    expect(extended.status).toBe(202);
    expect(await waitForVolume(api, token, volume.id, ['available', 'error_extending'])).toMatchObject({
      status: 'available',
      size: 2,
    });

    expect((await request(`${api}/volumes/${volume.id}`, { method: 'DELETE', token })).status).toBe(202);
    await waitForVolume(api, token, volume.id, ['deleted', 'error_deleting']);
    const [after] = await stack.query<{ status: string }>('SELECT status FROM volumes WHERE id = $1', [
      volume.id,
    ]);
    expect(after?.status).toBe('deleted');
    expect(await stack.tgtd.targets()).not.toContain(name);
    expect(await stack.tgtd.accounts()).not.toContain(user);
    expect(existsSync(join(stack.volumesDir, name))).toBe(false);
    expect(existsSync(join(stack.volumesPath, name))).toBe(false);
    const log = stack.service('volume-worker').log;
    expect(log).toMatch(
      new RegExp(
        `"volume_id":"${volume.id}".*"msg":"CHAP secret cannot be opened: the export is removed without it"`,
      ),
    );
    expect(log).not.toContain(password);
  }, 60_000);

  test("a volume whose stored CHAP secret no longer opens is served with its target config's credentials and resealed at the next start", async () => {
    const volume = await create(1, 'recovered');
    const info = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    const password = info.data.auth_password;
    // sealed under a key that is gone
    await stack.query(
      "UPDATE volumes SET provider_auth = regexp_replace(provider_auth, '^enc:v1:[^:]+:', 'enc:v1:gone:') WHERE id = $1",
      [volume.id],
    );
    // tgtd forgets every export: the periodic check restores this one from the config's account
    await stack.tgtd.crashAndRestart();
    await workerSaid(volume.id, 'export restored');
    expect((await run('iscsi-inq', [iscsiUrl(info)])).stdout).toContain('DIRECT_ACCESS');
    await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
    const served = (await stack.tgtd.targets()).split(/^(?=Target \d+: )/m);
    const acl = served.find((t) => t.includes(`${info.data.target_iqn}\n`))?.split('ACL information:')[1];
    expect(acl).toBeDefined();
    expect(acl).not.toContain('127.0.0.1');

    // the restarted worker seals the credentials again under its key: the row opens afterwards
    expect(await stack.service('volume-worker').stop()).toBe(0);
    await stack.startService('volume-worker');
    await workerSaid(volume.id, 'CHAP secret recovered from its target config');
    const [row] = await stack.query<{ provider_auth: string }>(
      'SELECT provider_auth FROM volumes WHERE id = $1',
      [volume.id],
    );
    expect(row?.provider_auth).toMatch(/^enc:v1:test:/);
    const again = await volumeRpc.initialize_connection(testContext(), stack.host, {
      volume_id: volume.id,
      connector,
    });
    expect(again.data).toMatchObject({ auth_username: info.data.auth_username, auth_password: password });
    await volumeRpc.terminate_connection(testContext(), stack.host, { volume_id: volume.id, connector });
    const log = stack.service('volume-worker').log;
    expect(log).not.toContain('CHAP secret does not open');
    expect(log).not.toContain(password);

    await request(`${api}/volumes/${volume.id}`, { method: 'DELETE', token });
    await waitForVolume(api, token, volume.id, ['deleted']);
  }, 60_000);

  test('force deletes racing their creates leave every volume deleted and no storage or export behind', async () => {
    const files = async () => (await run('ls', [stack.volumesPath])).stdout.trim();
    const [filesBefore, targetsBefore] = [await files(), await stack.tgtd.targets()];
    // each force delete is sent the moment its create is answered: unplaced, being placed,
    // being created on the host, or created, whichever the race makes it
    const ids = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const created = await request(`${api}/volumes`, {
          method: 'POST',
          token,
          body: { volume: { size: 1, name: `race-${i}` } },
        });
        expect(created.status).toBe(202);
        const forced = await request(`${api}/volumes/${created.body.volume.id}/action`, {
          method: 'POST',
          token,
          body: { 'os-force_delete': {} },
        });
        expect(forced.status).toBe(202);
        return created.body.volume.id as string;
      }),
    );
    for (const id of ids) await waitForVolume(api, token, id, ['deleted']);
    // the worker's sweep may still be removing what a lost create made: poll for the evidence
    const deadline = Date.now() + 20_000;
    while (
      Date.now() < deadline &&
      ((await files()) !== filesBefore || (await stack.tgtd.targets()) !== targetsBefore)
    )
      await new Promise((r) => setTimeout(r, 200));
    expect(await files()).toBe(filesBefore);
    expect(await stack.tgtd.targets()).toBe(targetsBefore);
  }, 60_000);

  test('a create sent while the volume worker is down waits in its queue and completes when it returns', async () => {
    await stack.service('volume-worker').stop();
    const created = await request(`${api}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1, name: 'patient' } },
    });
    expect(created.status).toBe(202);
    await new Promise((r) => setTimeout(r, 500));
    expect((await request(`${api}/volumes/${created.body.volume.id}`, { token })).body.volume.status).toBe(
      'creating',
    );
    await stack.startService('volume-worker');
    const volume = await waitForVolume(api, token, created.body.volume.id, ['available']);
    expect(volume.name).toBe('patient');
  }, 60_000);

  test('a create, delete or extend whose message was lost is finished on its own, once it has stalled', async () => {
    const ds = createDataSource({ url: stack.database.url, poolSize: 1 });
    await ds.initialize();
    try {
      const volumes = new VolumeRepository(ds);
      // placed by a scheduler whose cast to the worker never arrived
      const insert = (name: string) =>
        volumes.createWithinQuota(
          {
            size: 1,
            projectId: 'proj1',
            userId: 'tester',
            availabilityZone: 'nova',
            displayName: name,
            displayDescription: null,
            volumeType: null,
          },
          'volume-%08x',
          { volumes: -1, gigabytes: -1 },
        );
      const lost = await insert('lost-create');
      await volumes.placeOnHosts([{ id: lost.id, host: stack.host }]);
      // accepted by the API, whose cast to the scheduler never arrived
      const unplaced = await insert('lost-schedule');
      // accepted for deletion by the API, whose cast never arrived
      const doomed = await create(1, 'lost-delete');
      const { backendName: doomedName } = await volumes.transitionOrThrow(
        doomed.id,
        VOLUME_STATES.moves.beginDelete,
      );
      expect(await stack.tgtd.targets()).toContain(`iqn.2010-10.org.openstack:${doomedName}`);
      // accepted for growing to 2 GiB by the API, whose cast never arrived
      const growing = await create(1, 'lost-extend');
      const { backendName: growingName } = await volumes.transitionOrThrow(
        growing.id,
        VOLUME_STATES.moves.beginExtend,
        {
          extendTo: 2,
        },
      );
      // several export-check passes later, nothing has touched them: they are not stalled yet
      await new Promise((r) => setTimeout(r, 1500));
      expect((await volumes.get(lost.id)).status).toBe('creating');
      expect(await volumes.get(unplaced.id)).toMatchObject({ status: 'creating', host: null });
      expect((await volumes.get(doomed.id)).status).toBe('deleting');
      expect((await volumes.get(growing.id)).status).toBe('extending');

      await ds.query("UPDATE volumes SET updated_at = now() - interval '1 hour' WHERE id = ANY($1)", [
        [lost.id, unplaced.id, doomed.id, growing.id],
      ]);
      expect(await waitForVolume(api, token, lost.id, ['available'])).toMatchObject({ name: 'lost-create' });
      expect(await waitForVolume(api, token, unplaced.id, ['available'])).toMatchObject({
        name: 'lost-schedule',
      });
      expect(stack.service('scheduler').log).toMatch(/placing a volume whose request was lost/);
      await waitForVolume(api, token, doomed.id, ['deleted']);
      expect(await waitForVolume(api, token, growing.id, ['available'])).toMatchObject({ size: 2 });
      expect(statSync(join(stack.volumesPath, growingName)).size).toBe(2 * GiB);
      expect((await volumes.get(growing.id)).extendTo).toBeNull();
      const targets = await stack.tgtd.targets();
      expect(targets).toContain(`iqn.2010-10.org.openstack:${lost.backendName}`);
      expect(targets).not.toContain(`iqn.2010-10.org.openstack:${doomedName}`);
      expect(existsSync(join(stack.volumesPath, lost.backendName))).toBe(true);
      expect(existsSync(join(stack.volumesPath, doomedName))).toBe(false);
      expect(stack.service('volume-worker').log).toMatch(/resuming an unfinished operation/);
    } finally {
      await ds.destroy();
    }
  }, 60_000);

  test("basalt volume list prints the seed's table", async () => {
    const volume = await create(1, 'volume1');
    // the command npm installed, as the README runs it with npx
    const { stdout } = await run(join(ROOT, 'node_modules/.bin/basalt'), ['volume', 'list'], {
      env: { ...process.env, BASALT__DATABASE__CONNECTION: stack.database.url },
    });
    const lines = stdout.trim().split('\n');
    expect(lines[1]).toMatch(
      /^\| ID +\| Status +\| Display Name +\| Size +\| Volume Type +\| Attached to +\|$/,
    );
    expect(stdout).toMatch(
      new RegExp(`\\| ${volume.id} \\| available +\\| volume1 +\\| 1 +\\| __DEFAULT__ +\\| +\\|`),
    );
  }, 30_000);

  test('every log line of a request carries its request id, across processes', async () => {
    const requestId = 'req-0badcafe-0000-4000-8000-000000000001';
    const created = await request(`${api}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1 } },
      headers: { 'X-OpenStack-Request-ID': requestId },
    });
    expect(created.headers.get('x-openstack-request-id')).toBe(requestId);
    // the worker's word, not a poll of the API: a poll is a request of its own, with its own id
    await workerSaid(created.body.volume.id, 'volume created');
    for (const name of ['api', 'scheduler', 'volume-worker'] as const) {
      const lines = stack
        .service(name)
        .log.split('\n')
        .filter((l) => l.includes(created.body.volume.id) || l.includes(requestId));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.filter((l) => !l.includes(`"request_id":"${requestId}"`))).toEqual([]);
    }
  }, 30_000);
});
