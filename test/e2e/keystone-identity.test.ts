import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request, waitForVolume } from '../support/http';
import { CountingProxy, KeystoneFixture, type KeystoneUser, startImageVersions } from '../support/keystone';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);

describe('the volume API with a real Keystone as its identity service', () => {
  let keystone: KeystoneFixture;
  let proxy: CountingProxy;
  let stack: VolumeStack;
  let alice: KeystoneUser;
  let bob: KeystoneUser;
  let region: string;
  let image: Awaited<ReturnType<typeof startImageVersions>>;

  beforeAll(async () => {
    keystone = await KeystoneFixture.start();
    proxy = new CountingProxy(keystone.url);
    await proxy.start();
    const service = await keystone.createServiceUser();
    alice = await keystone.createUser('member');
    bob = await keystone.createUser('member');
    stack = new VolumeStack({
      authStrategy: 'keystone',
      extraEnv: {
        BASALT__KEYSTONE_AUTHTOKEN__AUTH_URL: proxy.url,
        BASALT__KEYSTONE_AUTHTOKEN__WWW_AUTHENTICATE_URI: keystone.url,
        BASALT__KEYSTONE_AUTHTOKEN__USERNAME: service.name,
        BASALT__KEYSTONE_AUTHTOKEN__PASSWORD: service.password,
      },
    });
    await stack.start();
    image = await startImageVersions();
    region = await keystone.registerRegion(stack.volumeUrl, image.url);
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
    await proxy?.stop();
    await image?.close();
    await keystone?.cleanup();
  }, 60_000);

  const api = (user: KeystoneUser) => `${stack.volumeUrl}/v3/${user.projectId}`;

  test('a missing, garbage or revoked token is a 401 with the fault body and WWW-Authenticate', async () => {
    const revoked = await keystone.token(alice);
    await keystone.revoke(revoked);
    for (const token of [undefined, 'garbage', revoked]) {
      const res = await request(`${api(alice)}/volumes`, { ...(token ? { token } : {}) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(`Keystone uri="${keystone.url}"`);
      expect(res.body).toEqual({ unauthorized: { code: 401, message: expect.any(String) } });
    }
    // the version document needs no token
    expect((await request(`${stack.volumeUrl}/v3/`)).status).toBe(200);
  });

  test("a valid token works in its own project only; another project's volumes stay invisible", async () => {
    const token = await keystone.token(alice);
    const created = await request(`${api(alice)}/volumes`, {
      method: 'POST',
      token,
      body: { volume: { size: 1, name: 'ks-vol' } },
    });
    expect(created.status).toBe(202);
    const volume = await waitForVolume(api(alice), token, created.body.volume.id, ['available']);

    const bobs = await keystone.token(bob);
    expect((await request(`${api(bob)}/volumes`, { token: bobs })).body.volumes).toEqual([]);
    expect((await request(`${api(bob)}/volumes/${volume.id}`, { token: bobs })).status).toBe(404);
    const crossed = await request(`${api(alice)}/volumes`, { token: bobs });
    expect(crossed.status).toBe(400);
    expect(crossed.body.badRequest.message).toMatch(/doesn't match Context's project_id/);
    // member, not admin
    const reset = await request(`${api(alice)}/volumes/${volume.id}/action`, {
      method: 'POST',
      token,
      body: { 'os-reset_status': { status: 'error' } },
    });
    expect(reset.status).toBe(403);

    expect((await request(`${api(alice)}/volumes/${volume.id}`, { method: 'DELETE', token })).status).toBe(
      202,
    );
    await waitForVolume(api(alice), token, volume.id, ['deleted']);
  }, 60_000);

  test('the api validates a token once, then answers from its cache', async () => {
    const token = await keystone.token(bob);
    const before = proxy.count(/^GET \/v3\/auth\/tokens/);
    for (let i = 0; i < 5; i++) {
      expect((await request(`${api(bob)}/volumes`, { token })).status).toBe(200);
    }
    expect(proxy.count(/^GET \/v3\/auth\/tokens/)).toBe(before + 1);
  });

  test('Keystone unreachable is a 503 for a token the api has not seen', async () => {
    const token = await keystone.token(alice);
    await proxy.stop();
    try {
      const res = await request(`${api(alice)}/volumes`, { token });
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        serviceUnavailable: { code: 503, message: expect.stringMatching(/identity/) },
      });
    } finally {
      await proxy.start();
    }
    expect((await request(`${api(alice)}/volumes`, { token })).status).toBe(200);
  });

  test('python-openstackclient: volume create, list, delete with password auth against Keystone', async () => {
    const openstack = async (...args: string[]) =>
      (
        await run(
          '/usr/bin/openstack',
          [
            '--os-auth-url',
            keystone.url,
            '--os-identity-api-version',
            '3',
            '--os-username',
            alice.name,
            '--os-password',
            alice.password,
            '--os-project-id',
            alice.projectId,
            '--os-user-domain-name',
            'Default',
            '--os-region-name',
            region,
            ...args,
          ],
          { timeout: 60_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
        )
      ).stdout;
    const created = JSON.parse(await openstack('volume', 'create', '--size', '1', 'osc-ks', '-f', 'json'));
    expect(created).toMatchObject({ name: 'osc-ks', size: 1 });
    const token = await keystone.token(alice);
    await waitForVolume(api(alice), token, created.id, ['available']);
    const listed = JSON.parse(await openstack('volume', 'list', '-f', 'json'));
    expect(listed).toEqual([
      expect.objectContaining({ ID: created.id, Name: 'osc-ks', Status: 'available' }),
    ]);
    await openstack('volume', 'delete', created.id);
    await waitForVolume(api(alice), token, created.id, ['deleted']);
  }, 120_000);

  test('no token and no service password in the api log', async () => {
    const log = stack.service('api').log;
    expect(log).toMatch(/"auth_strategy":"keystone"/);
    expect(log).not.toMatch(/gAAAA/);
    expect(log).not.toContain(alice.password);
  });
});
