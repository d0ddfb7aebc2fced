import { InvalidInputError } from '@basalt/errors';

const MAX_INT = 2 ** 31 - 1;

const invalid = (field: string, value: unknown, why: string) =>
  new InvalidInputError(
    `Invalid input for field/attribute ${field}. Value: ${JSON.stringify(value)}. ${why}`,
  );

export function objectBody(body: unknown, key: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('The request body must be a JSON object.');
  }
  const inner = (body as Record<string, unknown>)[key];
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) {
    throw new InvalidInputError(`Missing required element '${key}' in request body.`);
  }
  return inner as Record<string, unknown>;
}

/** The one action an action body names (`{"os-extend": {…}}`). */
export function actionName(body: unknown): string {
  if (typeof body !== 'object' || body === null || Object.keys(body).length !== 1) {
    throw new InvalidInputError('An action body names exactly one action.');
  }
  return Object.keys(body)[0] as string;
}

/** Cinder accepts sizes as integers or digit strings; anything else, or below 1, is refused. */
export function positiveInt(field: string, value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw invalid(field, value, `${JSON.stringify(value)} is not an integer.`);
  if (n < 1) throw invalid(field, value, `${n} is less than the minimum of 1.`);
  if (n > MAX_INT) throw invalid(field, value, `${n} is greater than the maximum of ${MAX_INT}.`);
  return n;
}

export function quotaLimit(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw invalid(field, value, 'Must be an integer.');
  if (value < -1 || value > MAX_INT) throw invalid(field, value, `Must be between -1 and ${MAX_INT}.`);
  return value;
}

/** An optional display string: stored and shown exactly as given, never used in a command. */
export function optionalText(field: string, value: unknown, max = 255): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value !== 'string') throw invalid(field, value, 'Must be a string.');
  if (value.length > max) throw invalid(field, value.slice(0, 32), `Longer than ${max} characters.`);
  if ([...value].some(isControlCharacter)) throw invalid(field, value, 'Contains control characters.');
  return value;
}

/** C0 controls other than tab, newline and carriage return. */
function isControlCharacter(char: string): boolean {
  const code = char.charCodeAt(0);
  return code < 0x20 && char !== '\t' && char !== '\n' && char !== '\r';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Cinder's metadata: an object of string values, keys of 1–255 characters, values of at most 255. */
export function metadataBody(field: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(field, value, 'Must be an object.');
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.length < 1 || key.length > 255) throw invalid(field, key, 'Keys must be 1 to 255 characters.');
    if (typeof item !== 'string') throw invalid(field, item, `The value of ${key} must be a string.`);
    if (item.length > 255) throw invalid(field, item.slice(0, 32), 'Values must be at most 255 characters.');
  }
  return value as Record<string, string>;
}

/** Cinder's boolean parameters: a JSON boolean or one of its strings. */
export function booleanParam(field: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (text !== undefined && ['true', 't', '1', 'yes', 'y', 'on'].includes(text)) return true;
  if (text !== undefined && ['false', 'f', '0', 'no', 'n', 'off'].includes(text)) return false;
  throw invalid(field, value, 'Must be a boolean.');
}
