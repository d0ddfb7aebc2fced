/**
 * Runs OpenStack Tempest's volume API tests (tempest.api.volume and cinder_tempest_plugin's) and its
 * compute flavor tests (tempest.api.compute.flavors) against
 * a Basalt stack started here as separate processes, with the built-in identity and pre-provisioned
 * accounts, or (`--identity keystone`) with a real Keystone, where Tempest makes its own projects
 * and users (dynamic credentials; template test/tempest/tempest-keystone.conf).
 *
 *   node -r @swc-node/register test/tempest/run.ts [--identity builtin|keystone] [--conf FILE]
 *                                                  [--regex RE] [--concurrency N] [--exclude FILE]
 *
 * `--conf` is a tempest.conf template (default test/tempest/tempest.conf): `${WORKDIR}`,
 * `${IDENTITY_URI}`, `${VOLUME_URI}`, `${ACCOUNTS_FILE}`, `${REGION}`, `${IMAGE_REF}` and `${ADMIN_USERNAME}`,
 * `${ADMIN_PASSWORD}`, `${ADMIN_PROJECT}` are filled in from the stack, so another
 * template (another identity, other accounts) reuses the same runner. `--exclude` (default
 * test/tempest/exclude.txt) names the tests that no feature flag can skip. Exits non-zero on any
 * failure.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { KeystoneFixture } from '../support/keystone';
import { ROOT } from '../support/processes';
import { VolumeStack } from '../support/stack';

const DEFAULT_REGEX =
  '^(tempest\\.api\\.volume|cinder_tempest_plugin\\.api\\.volume|tempest\\.api\\.compute\\.flavors)\\.';
/** Accounts Tempest locks per test class: enough admins and members for two workers at once. */
const ADMINS = 3;
const MEMBERS = 6;

interface Args {
  readonly identity: 'builtin' | 'keystone';
  readonly conf: string;
  readonly regex: string;
  readonly concurrency: number;
  readonly exclude: string;
}

function parseArgs(argv: readonly string[]): Args {
  const args: { -readonly [K in keyof Args]: Args[K] } = {
    identity: 'builtin',
    conf: '',
    regex: DEFAULT_REGEX,
    concurrency: 2,
    exclude: join(__dirname, 'exclude.txt'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--identity' && (value === 'builtin' || value === 'keystone')) args.identity = value;
    else if (flag === '--conf') args.conf = value;
    else if (flag === '--regex') args.regex = value;
    else if (flag === '--exclude') args.exclude = value;
    else if (flag === '--concurrency' && /^[1-9]\d*$/.test(value)) args.concurrency = Number(value);
    else throw new Error(`unknown or bad option ${flag} ${value}`);
  }
  args.conf ||= join(__dirname, args.identity === 'keystone' ? 'tempest-keystone.conf' : 'tempest.conf');
  return args;
}

/** `[identity] users` entries and the accounts.yaml naming the same users, one project each. */
function accounts(): { users: string; yaml: string } {
  const entries = [
    ...Array.from({ length: ADMINS }, (_, i) => ({ name: `tempest-admin-${i + 1}`, role: 'admin' })),
    ...Array.from({ length: MEMBERS }, (_, i) => ({ name: `tempest-user-${i + 1}`, role: 'member' })),
  ];
  const users = entries.map((e) => `${e.name}:${e.name}-pass:${e.name}-project:${e.role}`).join(',');
  const yaml = entries
    .map(
      (e) =>
        `- username: '${e.name}'\n  password: '${e.name}-pass'\n  project_name: '${e.name}-project'\n` +
        `  domain_name: 'Default'\n  roles: ['${e.role}']\n`,
    )
    .join('');
  return { users, yaml };
}

function render(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_]+)\}/g, (whole, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`the tempest.conf template names an unknown ${whole}`);
    return value;
  });
}

function run(command: string, argv: readonly string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** The services' and Tempest's logs outlive the stack, in .tempest/ at the top of the repo. */
function keepLogs(dir: string): void {
  const logs = join(ROOT, '.tempest');
  rmSync(logs, { recursive: true, force: true });
  mkdirSync(logs, { recursive: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.log')))
    copyFileSync(join(dir, file), join(logs, file));
  const tempestLog = join(dir, 'tempest', 'tempest.log');
  if (existsSync(tempestLog)) copyFileSync(tempestLog, join(logs, 'tempest.log'));
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { users, yaml } = accounts();
  const keystone = args.identity === 'keystone' ? await KeystoneFixture.start() : undefined;
  const service = await keystone?.createServiceUser();
  const stack = new VolumeStack(
    keystone && service
      ? {
          authStrategy: 'keystone',
          extraEnv: {
            BASALT__KEYSTONE_AUTHTOKEN__AUTH_URL: keystone.url,
            BASALT__KEYSTONE_AUTHTOKEN__USERNAME: service.name,
            BASALT__KEYSTONE_AUTHTOKEN__PASSWORD: service.password,
          },
        }
      : // the compute worker and the test image, for the volume tests that attach to a server
        // (the stack's service user, admin, fetches the image for the compute worker)
        {
          authStrategy: 'builtin',
          compute: true,
          extraEnv: {
            BASALT__IDENTITY__USERS: `${users},admin:adminpass:admin:admin`,
            // Tempest detaches from guests it has just booted, which ignore unplug requests until
            // their boot is done: as long a window as nova's, requests as often as the tests'
            // (under [volume] build_timeout, so a detach ends before Tempest stops waiting)
            BASALT__COMPUTE__DEVICE_DETACH_TIMEOUT: '90',
            BASALT__COMPUTE__DEVICE_DETACH_ATTEMPTS: '24',
          },
        },
  );
  const cleanup = async () => {
    await stack.stop();
    await keystone?.cleanup();
  };
  const stop = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    await stack.start();
    const region = keystone ? await keystone.registerRegion(stack.volumeUrl) : 'RegionOne';
    const workdir = join(stack.dir, 'tempest');
    mkdirSync(join(workdir, 'locks'), { recursive: true });
    const accountsFile = join(workdir, 'accounts.yaml');
    writeFileSync(accountsFile, yaml);
    const confFile = join(workdir, 'tempest.conf');
    const admin = keystone?.adminCredentials;
    writeFileSync(
      confFile,
      render(readFileSync(args.conf, 'utf8'), {
        WORKDIR: workdir,
        IDENTITY_URI: keystone ? keystone.url.replace(/\/v3$/, '') : stack.identityUrl,
        VOLUME_URI: stack.volumeUrl,
        ACCOUNTS_FILE: accountsFile,
        REGION: region,
        ADMIN_USERNAME: admin?.username ?? '',
        ADMIN_PASSWORD: admin?.password ?? '',
        ADMIN_PROJECT: admin?.project ?? '',
        IMAGE_REF: stack.imageId,
      }),
    );
    console.log(`tempest: stack at ${stack.volumeUrl}, identity ${stack.identityUrl}, work dir ${workdir}`);
    // Debian's tempest runs on /usr/bin/python3 whatever python3 comes first on PATH
    return await run(
      '/usr/bin/python3',
      [
        '-m',
        'tempest.cmd.main',
        'run',
        '--config-file',
        confFile,
        '--regex',
        args.regex,
        '--concurrency',
        String(args.concurrency),
        '--exclude-list',
        args.exclude,
      ],
      workdir,
    );
  } finally {
    keepLogs(stack.dir);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
