import { existsSync, readFileSync } from 'node:fs';
import { errorMessage } from '@basalt/errors';
import { parse as parseIni } from 'ini';
import { ConfigError, type ConfigOf, type Schema } from './option';

export interface LoadOptions {
  /** INI file to read; a missing file is an error when named explicitly. */
  readonly file?: string;
  /** Environment to read `BASALT__<SECTION>__<OPTION>` overrides from. */
  readonly env?: NodeJS.ProcessEnv;
  /** Values that win over everything else (tests, command-line flags). */
  readonly overrides?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export const ENV_PREFIX = 'BASALT__';

/**
 * Defaults, then the file, then the environment, then explicit overrides — each value parsed and
 * checked once, here. An unknown section or option is an error, so a typo never passes silently.
 */
export function loadConfig<S extends Schema>(schema: S, options: LoadOptions = {}): ConfigOf<S> {
  const raw = new Map<string, Map<string, { value: string; source: string }>>();
  const put = (section: string, key: string, value: string, source: string) => {
    if (!(section in schema)) throw new ConfigError(`${source}: unknown section [${section}]`);
    if (!(key in (schema[section] as object)))
      throw new ConfigError(`${source}: unknown option ${section}.${key}`);
    const entries = raw.get(section) ?? new Map<string, { value: string; source: string }>();
    raw.set(section, entries);
    entries.set(key, { value, source });
  };

  if (options.file !== undefined) {
    if (!existsSync(options.file)) throw new ConfigError(`config file ${options.file} does not exist`);
    let parsed: Record<string, unknown>;
    try {
      parsed = parseIni(readFileSync(options.file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${options.file}: ${errorMessage(error)}`);
    }
    for (const [section, values] of Object.entries(parsed)) {
      if (typeof values !== 'object' || values === null) {
        throw new ConfigError(`${options.file}: option "${section}" is outside any [section]`);
      }
      for (const [key, value] of Object.entries(values)) put(section, key, String(value), options.file);
    }
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const [section, key, ...rest] = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    if (!section || !key || rest.length > 0)
      throw new ConfigError(`environment ${name}: expected ${ENV_PREFIX}SECTION__OPTION`);
    put(section === 'default' ? 'DEFAULT' : section, key, value, `environment ${name}`);
  }
  for (const [section, values] of Object.entries(options.overrides ?? {})) {
    for (const [key, value] of Object.entries(values)) put(section, key, value, 'override');
  }

  const config: Record<string, Record<string, unknown>> = {};
  for (const [sectionName, section] of Object.entries(schema)) {
    const values: Record<string, unknown> = {};
    for (const [key, option] of Object.entries(section)) {
      const given = raw.get(sectionName)?.get(key);
      if (!given) {
        values[key] = option.default;
        continue;
      }
      try {
        values[key] = option.parse(given.value);
      } catch (error) {
        throw new ConfigError(`${given.source}: ${sectionName}.${key}: ${errorMessage(error)}`);
      }
    }
    config[sectionName] = Object.freeze(values);
  }
  return Object.freeze(config) as ConfigOf<S>;
}

/** A commented sample file listing every option, its type, default and meaning. */
export function renderSample(schema: Schema): string {
  const lines: string[] = [];
  for (const [sectionName, section] of Object.entries(schema)) {
    lines.push(`[${sectionName}]`, '');
    for (const [key, option] of Object.entries(section)) {
      const def = Array.isArray(option.default) ? option.default.join(',') : String(option.default);
      lines.push(`# ${option.help}`, `# (${option.kind})`, `#${key} = ${option.secret ? '' : def}`, '');
    }
  }
  return lines.join('\n');
}
