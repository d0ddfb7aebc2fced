import { SORT_COLUMNS, type SortKey } from '@basalt/db';
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

export interface ListQuery {
  readonly limit: number;
  readonly marker?: string;
  readonly sort: Array<{ key: SortKey; dir: 'asc' | 'desc' }>;
  readonly status?: string;
  readonly name?: string;
  readonly metadata?: Record<string, string>;
  readonly projectId?: string;
  readonly allTenants: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** `limit`, at most `maxLimit` (Cinder's osapi_max_limit), which is also the default. */
export function listLimit(query: Record<string, unknown>, maxLimit: number): number {
  const limitText = query.limit;
  if (limitText === undefined) return maxLimit;
  if (typeof limitText !== 'string' || !/^\d+$/.test(limitText))
    throw new InvalidInputError(`limit must be a non-negative integer, not "${String(limitText)}".`);
  return Math.min(Number(limitText), maxLimit);
}

export function listQuery(query: Record<string, unknown>, maxLimit: number): ListQuery {
  const str = (k: string) => (typeof query[k] === 'string' ? (query[k] as string) : undefined);
  const limit = listLimit(query, maxLimit);
  const marker = str('marker');
  if (marker !== undefined && !isUuid(marker)) throw new InvalidInputError(`Invalid marker "${marker}".`);
  const sort: ListQuery['sort'] = [];
  const sortText =
    str('sort') ?? (str('sort_key') ? `${str('sort_key')}:${str('sort_dir') ?? 'desc'}` : 'created_at:desc');
  for (const part of sortText.split(',')) {
    const [key = '', dir = 'desc'] = part.trim().split(':');
    // own keys only: "constructor" or "__proto__" would name Object's, not a column
    if (!Object.hasOwn(SORT_COLUMNS, key)) throw new InvalidInputError(`Invalid sort key "${key}".`);
    if (dir !== 'asc' && dir !== 'desc') throw new InvalidInputError(`Invalid sort direction "${dir}".`);
    sort.push({ key: key as SortKey, dir });
  }
  const allTenants = ['1', 'true', 'True'].includes(str('all_tenants') ?? '');
  const metadataText = str('metadata');
  let metadata: Record<string, string> | undefined;
  if (metadataText !== undefined) {
    try {
      // Cinder's clients send a dict's repr or JSON; single quotes are the repr's
      metadata = metadataBody('metadata', JSON.parse(metadataText.replace(/'/g, '"')));
    } catch (error) {
      if (error instanceof InvalidInputError) throw error;
      throw new InvalidInputError(`Invalid metadata filter "${metadataText}".`);
    }
  }
  return {
    ...(metadata ? { metadata } : {}),
    ...(str('project_id') ? { projectId: str('project_id') } : {}),
    limit,
    sort,
    allTenants,
    ...(marker ? { marker } : {}),
    ...(str('status') ? { status: str('status') } : {}),
    ...(str('name') ? { name: str('name') } : {}),
  };
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
