import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProcessConfig } from './index';
import { loadConfig, renderSample } from './load';
import { ConfigError } from './option';
import { schema } from './schema';

const dirs: string[] = [];
const file = (text: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'basalt-config-'));
  dirs.push(dir);
  const path = join(dir, 'basalt.conf');
  writeFileSync(path, text);
  return path;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  test('defaults, then file, then environment, then overrides', () => {
    const path = file('[rabbit]\nprefetch_count = 8\nrpc_response_timeout = 5\n[DEFAULT]\nhost = h1\n');
    const config = loadConfig(schema, {
      file: path,
      env: { BASALT__RABBIT__PREFETCH_COUNT: '9', BASALT__DEFAULT__HOST: 'h2', UNRELATED: 'x' },
      overrides: { DEFAULT: { host: 'h3' } },
    });
    expect(config.rabbit.prefetch_count).toBe(9);
    expect(config.rabbit.rpc_response_timeout).toBe(5);
    expect(config.rabbit.control_exchange).toBe('nova');
    expect(config.DEFAULT.host).toBe('h3');
    expect(Object.isFrozen(config.rabbit)).toBe(true);
  });

  test.each([
    ['[rabbit]\nprefetch = 1\n', /unknown option rabbit.prefetch/],
    ['[rabit]\nprefetch_count = 1\n', /unknown section \[rabit\]/],
    ['[rabbit]\nprefetch_count = many\n', /rabbit.prefetch_count: "many" is not an integer/],
    ['[rabbit]\nprefetch_count = 0\n', /must be at least 1/],
    ['[rabbit]\namqp_durable_queues = maybe\n', /not a boolean/],
    ['[DEFAULT]\nhost = bad host;rm\n', /DEFAULT.host: must match/],
    ['[DEFAULT]\nlog_level = loud\n', /not one of/],
  ])('a bad file is refused with a message naming the option: %j', (text, message) => {
    expect(() => loadConfig(schema, { file: file(text) })).toThrow(message);
  });

  test('a named file that does not exist, or a flag without a path, is an error', () => {
    expect(() => loadConfig(schema, { file: '/nonexistent/basalt.conf' })).toThrow(ConfigError);
    expect(() => loadProcessConfig(['--config-file'], {})).toThrow('--config-file needs a path');
    expect(() => loadProcessConfig([], { BASALT__NOPE: 'x' })).toThrow(/expected BASALT__SECTION__OPTION/);
  });

  test('the sample documents every option and hides secrets', () => {
    const sample = renderSample(schema);
    for (const [section, options] of Object.entries(schema)) {
      expect(sample).toContain(`[${section}]`);
      for (const key of Object.keys(options)) expect(sample).toMatch(new RegExp(`^#${key} = `, 'm'));
    }
    expect(sample).not.toContain('guest:guest');
    // the broker's and the database's credentials, the token key, the users' passwords, the sealing keys
    for (const key of ['transport_url', 'connection', 'token_secret', 'users', 'secret_keys']) {
      expect(sample).toMatch(new RegExp(`^#${key} = $`, 'm'));
    }
    expect(sample).not.toContain('postgres://');
    expect(sample).not.toContain('admin:admin');
  });
});
