import { InvalidInputError } from '@basalt/errors';

/** ISO 8601 as nova's date-time format check takes it (iso8601.parse_date). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;

/** Python's repr of a string, as jsonschema's messages quote one. */
export function pyRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const body = value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return `${quote}${quote === "'" ? body.replace(/'/g, "\\'") : body}${quote}`;
}

/** Python's repr of a list of strings, as jsonschema's enum messages print one. */
export const pyList = (items: readonly string[]): string => `[${items.map(pyRepr).join(', ')}]`;

/** oslo's bool_from_string: what it takes for true and for false (lower-cased, trimmed). */
export const OSLO_TRUE: readonly string[] = ['1', 't', 'true', 'on', 'y', 'yes'];
export const OSLO_FALSE: readonly string[] = ['0', 'f', 'false', 'off', 'n', 'no'];

/** Python's repr of a JSON value (a dict keeps the order it came in). */
export function pyValue(value: unknown): string {
  if (typeof value === 'string') return pyRepr(value);
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (Array.isArray(value)) return `[${value.map(pyValue).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyRepr(k)}: ${pyValue(v)}`)
      .join(', ')}}`;
  }
  return String(value);
}

/** nova's body schema error: the field, its value as Python prints it, jsonschema's message. */
export function bodyError(field: string | number, value: unknown, message: string): InvalidInputError {
  const shown = typeof value === 'string' ? value : pyValue(value);
  return new InvalidInputError(`Invalid input for field/attribute ${field}. Value: ${shown}. ${message}`);
}

/** An object of a body with only the keys its schema names (`additionalProperties: False`). */
export function checkKeys(field: string, body: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  const unexpected = Object.keys(body).filter((k) => !allowed.has(k));
  if (unexpected.length === 0) return;
  throw bodyError(field, body, additionalProperties(unexpected));
}

/** jsonschema's additionalProperties message. */
export function additionalProperties(unexpected: readonly string[]): string {
  const names = unexpected.map(pyRepr).join(', ');
  return `Additional properties are not allowed (${names} ${unexpected.length === 1 ? 'was' : 'were'} unexpected)`;
}

/** nova's parameter_types.tag: 1 to 60 characters, no comma or slash; `field` names it in errors. */
export function checkTag(field: string | number, tag: unknown): string {
  if (typeof tag !== 'string') throw bodyError(field, tag, `${pyValue(tag)} is not of type 'string'`);
  if (!/^[^,/]*$/.test(tag)) throw bodyError(field, tag, `${pyRepr(tag)} does not match '^[^,/]*$'`);
  if (tag.length === 0) throw bodyError(field, tag, `${pyRepr(tag)} should be non-empty`);
  if ([...tag].length > 60) throw bodyError(field, tag, `${pyRepr(tag)} is too long`);
  return tag;
}

/** A query parameter's values, as nova's query schemas see them (a list each). */
export const queryValues = (query: Record<string, unknown>, key: string): string[] => {
  const value = query[key];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
};

/** nova's query schema error for one parameter. */
export const schemaError = (key: string, value: string, message: string) =>
  new InvalidInputError(`Invalid input for query parameters ${key}. Value: ${value}. ${message}`);

/** A query parameter's value that must be one of an enum. */
export function checkQueryEnum(key: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) {
    throw schemaError(key, value, `${pyRepr(value)} is not one of ${pyList(allowed)}`);
  }
}

/** nova's parameter_types.non_negative_integer, one value of a query parameter. */
export function checkNonNegativeInteger(key: string, value: string): void {
  if (!/^[0-9]*$/.test(value)) throw schemaError(key, value, `${pyRepr(value)} does not match '^[0-9]*$'`);
  if (value === '') throw schemaError(key, value, `${pyRepr(value)} should be non-empty`);
}

/** A `{'type': 'string', 'format': 'date-time'}` value of a query parameter. */
export function checkDateTime(key: string, value: string): void {
  if (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw schemaError(key, value, `${pyRepr(value)} is not a 'date-time'`);
  }
}

/** nova's single_param: a parameter given more than once is refused. */
export function checkSingle(key: string, values: readonly string[]): void {
  if (values.length > 1) {
    const list = `[${values.map(pyRepr).join(', ')}]`;
    throw schemaError(key, list, `${list} is too long`);
  }
}

/** nova's check of a changes-since / changes-before window (2.66). */
export function checkChangesWindow(since: Date | undefined, before: Date): void {
  if (since !== undefined && before < since) {
    throw new InvalidInputError('The value of changes-since must be less than or equal to changes-before.');
  }
}

/** A date-time as nova's timeutils.parse_isotime reads it: no zone is UTC. */
export function isoTime(value: string): Date {
  return new Date(/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(value) ? value : `${value}Z`);
}
