import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { passwordToken, request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

const run = promisify(execFile);
// Debian's OpenStack clients, unmodified; they run on the system interpreter
const cli = (program: string, args: string[]) =>
  run(`/usr/bin/${program}`, args, { timeout: 60_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } });

describe('python-cinderclient (noauth) against the API', () => {
  const stack = new VolumeStack({ authStrategy: 'noauth' });
  let cinder: (...args: string[]) => Promise<string>;

  beforeAll(async () => {
    await stack.start();
    const auth = ['--os-auth-type', 'noauth', '--os-user-id', 'u1', '--os-project-id', 'cproj'];
    cinder = async (...args) =>
      (await cli('cinder', [...auth, '--os-endpoint', `${stack.volumeUrl}/v3`, ...args])).stdout;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const field = (table: string, name: string) => new RegExp(`\\| ${name} +\\| (\\S+) +\\|`).exec(table)?.[1];

  test('create, list, show, extend, delete', async () => {
    const created = await cinder('create', '--name', 'cvol', '1');
    const id = field(created, 'id') as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const api = `${stack.volumeUrl}/v3/cproj`;
    await waitForVolume(api, 'u1:cproj', id, ['available']);
    expect(await cinder('list')).toMatch(new RegExp(`\\| ${id} \\| available \\| cvol +\\| 1 `));
    const shown = await cinder('show', id);
    expect(field(shown, 'status')).toBe('available');
    expect(field(shown, 'size')).toBe('1');
    await cinder('extend', id, '3');
    const grown = await waitForVolume(api, 'u1:cproj', id, ['available'], 20_000).then(async () =>
      waitForSize(api, id, 3),
    );
    expect(grown).toBe(3);
    expect(await cinder('delete', id)).toContain('has been accepted');
    await waitForVolume(api, 'u1:cproj', id, ['deleted']);
    expect(await cinder('list')).not.toContain(id);
  }, 120_000);

  async function waitForSize(api: string, id: string, size: number): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const v = (await request(`${api}/volumes/${id}`, { token: 'u1:cproj' })).body.volume;
      if (v.size === size && v.status === 'available') return v.size;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('volume never grew');
  }
});

describe('python-openstackclient (password auth against the built-in identity)', () => {
  const stack = new VolumeStack({ authStrategy: 'builtin' });
  let openstack: (user: string, password: string, project: string, ...args: string[]) => Promise<string>;

  beforeAll(async () => {
    await stack.start();
    openstack = async (user, password, project, ...args) =>
      (
        await cli('openstack', [
          '--os-auth-url',
          `${stack.identityUrl}/v3`,
          '--os-identity-api-version',
          '3',
          '--os-username',
          user,
          '--os-password',
          password,
          '--os-project-name',
          project,
          '--os-user-domain-name',
          'Default',
          '--os-project-domain-name',
          'Default',
          ...args,
        ])
      ).stdout;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const alice = (...args: string[]) => openstack('alice', 'alicepass', 'demo', ...args);

  test('volume create, list, show, delete; projects apart; admin-only actions refused to members', async () => {
    const created = JSON.parse(await alice('volume', 'create', '--size', '1', 'ovol', '-f', 'json'));
    expect(created).toMatchObject({ name: 'ovol', size: 1 });
    const token = await tokenFor('alice', 'alicepass', 'demo');
    const api = `${stack.volumeUrl}/v3/${await projectId(token)}`;
    await waitForVolume(api, token, created.id, ['available']);
    const listed = JSON.parse(await alice('volume', 'list', '-f', 'json'));
    expect(listed).toEqual([
      expect.objectContaining({ ID: created.id, Name: 'ovol', Status: 'available', Size: 1 }),
    ]);
    const shown = JSON.parse(await alice('volume', 'show', 'ovol', '-f', 'json'));
    expect(shown).toMatchObject({ id: created.id, status: 'available' });

    // bob, in another project, sees none of it
    const bobs = JSON.parse(await openstack('bob', 'bobpass', 'other', 'volume', 'list', '-f', 'json'));
    expect(bobs).toEqual([]);
    const bobShow = await openstack('bob', 'bobpass', 'other', 'volume', 'show', created.id).catch((e) => e);
    expect(bobShow.code).not.toBe(0);

    // os-reset_status is for admins
    const refused = await alice('volume', 'set', '--state', 'error', 'ovol').catch((e) => e);
    expect(refused.code).not.toBe(0);
    expect(String(refused.stderr)).toMatch(
      /Policy doesn't allow volume_extension:volume_admin_actions:reset_status|403/,
    );
    expect(JSON.parse(await alice('volume', 'show', 'ovol', '-f', 'json')).status).toBe('available');

    await alice('volume', 'delete', 'ovol');
    await waitForVolume(api, token, created.id, ['deleted']);
    expect(JSON.parse(await alice('volume', 'list', '-f', 'json'))).toEqual([]);
  }, 180_000);

  test('bad credentials and bad tokens are refused with 401', async () => {
    const bad = await request(`${stack.identityUrl}/v3/auth/tokens`, {
      method: 'POST',
      body: {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'alice', password: 'nope', domain: { name: 'Default' } } },
          },
        },
      },
    });
    expect(bad.status).toBe(401);
    const token = await tokenFor('alice', 'alicepass', 'demo');
    const project = await projectId(token);
    const forged = `${token.split('.')[0]}.AAAA`;
    expect((await request(`${stack.volumeUrl}/v3/${project}/volumes`, { token: forged })).status).toBe(401);
    expect((await request(`${stack.volumeUrl}/v3/${project}/volumes`, { token })).status).toBe(200);
    // quota changes are for admins
    const quota = await request(`${stack.volumeUrl}/v3/${project}/os-quota-sets/${project}`, {
      method: 'PUT',
      token,
      body: { quota_set: { volumes: 1000 } },
    });
    expect(quota.status).toBe(403);
    expect(quota.body.forbidden.message).toBe(
      "Policy doesn't allow volume_extension:quotas:update to be performed.",
    );
  });

  async function tokenFor(user: string, password: string, project: string): Promise<string> {
    const { token, status } = await passwordToken(stack.identityUrl, user, password, project);
    expect(status).toBe(201);
    return token;
  }

  async function projectId(token: string): Promise<string> {
    return JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).project_id;
  }
});
