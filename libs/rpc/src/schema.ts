import { InvalidInputError } from '@basalt/errors';
import { isObject } from './wire';

/**
 * A checker of one JSON value that gives the static type it checks for. A handful of combinators
 * rather than a library: RPC arguments are flat records of strings, integers and small objects,
 * and the messages say which argument is wrong in the words handlers used before.
 */
export interface Schema<T> {
  /** Returns the value as `T` (objects copied with their declared keys only) or throws `SchemaError`. */
  parse(value: unknown, path: string): T;
}

/** A key of an object schema that may be absent. */
export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly optional: true;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never;
}[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
/** The type an object schema gives: its optional keys marked `?`. */
export type ObjectOf<S extends Shape> = {
  readonly [K in RequiredKeys<S>]: Infer<S[K]>;
} & { readonly [K in OptionalKeys<S>]?: Infer<S[K]> };

/** A value that does not have the declared shape; `path` names the part that is wrong (`connector.ip`). */
export class SchemaError extends InvalidInputError {
  constructor(
    readonly path: string,
    expected: string,
  ) {
    super(`${path || 'the value'} must be ${expected}`, { data: { path } });
  }
}

const check =
  <T>(expected: string, test: (value: unknown) => value is T): (() => Schema<T>) =>
  () => ({
    parse(value, path) {
      if (!test(value)) throw new SchemaError(path, expected);
      return value;
    },
  });

export const s = {
  /** A non-empty string. */
  string: check('a non-empty string', (v): v is string => typeof v === 'string' && v.length > 0),
  int: check('an integer', (v): v is number => typeof v === 'number' && Number.isSafeInteger(v)),
  number: check('a number', (v): v is number => typeof v === 'number' && Number.isFinite(v)),
  boolean: check('a boolean', (v): v is boolean => typeof v === 'boolean'),
  literal<const T extends string>(literal: T): Schema<T> {
    return check(`"${literal}"`, (v): v is T => v === literal)();
  },
  /** One of a few strings. */
  oneOf<const T extends string>(...values: T[]): Schema<T> {
    return check(values.map((v) => `"${v}"`).join(' or '), (v): v is T => values.includes(v as T))();
  },
  /** What a method without a result answers: nothing is read from the reply. */
  none(): Schema<void> {
    return { parse: () => undefined };
  },
  optional<T>(schema: Schema<T>): OptionalSchema<T> {
    return {
      optional: true,
      parse: (value, path) => (value === undefined || value === null ? undefined : schema.parse(value, path)),
    };
  },
  /** A list whose every item has the schema. */
  array<T>(items: Schema<T>): Schema<T[]> {
    return {
      parse(value, path) {
        if (!Array.isArray(value)) throw new SchemaError(path, 'an array');
        return value.map((item, i) => items.parse(item, `${path}[${i}]`));
      },
    };
  },
  /** An object of any keys whose every value has the schema (extra specs, metadata). */
  record<T>(values: Schema<T>): Schema<Readonly<Record<string, T>>> {
    return {
      parse(value, path) {
        if (!isObject(value)) throw new SchemaError(path, 'an object');
        return Object.fromEntries(
          Object.entries(value).map(([k, v]) => [k, values.parse(v, path ? `${path}.${k}` : k)]),
        );
      },
    };
  },
  /** An object with these keys; keys it does not declare are dropped (a newer caller may send more). */
  object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
    const keys = Object.keys(shape);
    return {
      parse(value, path) {
        if (!isObject(value)) throw new SchemaError(path, 'an object');
        const out: Record<string, unknown> = {};
        for (const key of keys) {
          const parsed = (shape[key] as Schema<unknown>).parse(value[key], path ? `${path}.${key}` : key);
          if (parsed !== undefined) out[key] = parsed;
        }
        return out as ObjectOf<S>;
      },
    };
  },
};
