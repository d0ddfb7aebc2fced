import { InvalidInputError } from '@basalt/errors';

/** One configuration option: its type, default and the sentence that documents it. */
export interface Option<T> {
  readonly kind: string;
  readonly default: T;
  readonly help: string;
  /** Never printed: `basalt config sample` leaves its default out. */
  readonly secret: boolean;
  parse(raw: string): T;
}

export class ConfigError extends InvalidInputError {}

const make = <T>(
  kind: string,
  def: T,
  help: string,
  parse: (raw: string) => T,
  secret = false,
): Option<T> => ({
  kind,
  default: def,
  help,
  secret,
  parse,
});

export const opt = {
  string(def: string, help: string, options: { pattern?: RegExp; secret?: boolean } = {}): Option<string> {
    return make(
      'string',
      def,
      help,
      (raw) => {
        if (options.pattern && !options.pattern.test(raw))
          throw new ConfigError(`must match ${options.pattern}`);
        return raw;
      },
      options.secret,
    );
  },
  int(def: number, help: string, range: { min?: number; max?: number } = {}): Option<number> {
    return make('integer', def, help, (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`"${raw}" is not an integer`);
      const value = Number.parseInt(raw, 10);
      if (range.min !== undefined && value < range.min)
        throw new ConfigError(`must be at least ${range.min}`);
      if (range.max !== undefined && value > range.max) throw new ConfigError(`must be at most ${range.max}`);
      return value;
    });
  },
  number(def: number, help: string, range: { min?: number } = {}): Option<number> {
    return make('number', def, help, (raw) => {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`"${raw}" is not a number`);
      if (range.min !== undefined && value < range.min)
        throw new ConfigError(`must be at least ${range.min}`);
      return value;
    });
  },
  bool(def: boolean, help: string): Option<boolean> {
    return make('boolean', def, help, (raw) => {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`"${raw}" is not a boolean (true/false)`);
    });
  },
  choice<const C extends string>(choices: readonly C[], def: C, help: string): Option<C> {
    return make(`one of ${choices.join(', ')}`, def, help, (raw) => {
      if (!(choices as readonly string[]).includes(raw)) {
        throw new ConfigError(`"${raw}" is not one of ${choices.join(', ')}`);
      }
      return raw as C;
    });
  },
  list(def: readonly string[], help: string, options: { secret?: boolean } = {}): Option<readonly string[]> {
    return make(
      'comma-separated list',
      def,
      help,
      (raw) =>
        raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      options.secret,
    );
  },
};

export type Section = Readonly<Record<string, Option<unknown>>>;
export type Schema = Readonly<Record<string, Section>>;

/** The compiled, read-only configuration a schema describes. */
export type ConfigOf<S extends Schema> = {
  readonly [K in keyof S]: { readonly [O in keyof S[K]]: S[K][O] extends Option<infer T> ? T : never };
};
