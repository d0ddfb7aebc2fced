import { existsSync } from 'node:fs';
import { type LoadOptions, loadConfig } from './load';
import { ConfigError } from './option';
import { type BasaltConfig, schema } from './schema';

export * from './load';
export * from './option';
export * from './schema';

export const DEFAULT_CONFIG_FILE = '/etc/basalt/basalt.conf';

/**
 * The configuration of a process: `--config-file PATH` on its command line, else `$BASALT_CONFIG`,
 * else /etc/basalt/basalt.conf when present; environment overrides on top.
 */
export function loadProcessConfig(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): BasaltConfig {
  const flag = argv.indexOf('--config-file');
  if (flag >= 0 && !argv[flag + 1]) throw new ConfigError('--config-file needs a path');
  const file =
    flag >= 0
      ? argv[flag + 1]
      : (env.BASALT_CONFIG ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined));
  const options: LoadOptions = { env, ...(file === undefined ? {} : { file }) };
  return loadConfig(schema, options);
}
