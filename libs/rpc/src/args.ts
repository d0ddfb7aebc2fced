import { InvalidInputError } from '@basalt/errors';
import { isObject } from './wire';

/** Reads one argument of an RPC message, refusing (not retryably) anything of the wrong shape. */
export const arg = {
  string(args: Record<string, unknown>, name: string): string {
    const value = args[name];
    if (typeof value !== 'string' || value.length === 0)
      throw new InvalidInputError(`argument ${name} must be a non-empty string`);
    return value;
  },
  int(args: Record<string, unknown>, name: string): number {
    const value = args[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      throw new InvalidInputError(`argument ${name} must be an integer`);
    return value;
  },
  object(args: Record<string, unknown>, name: string): Record<string, unknown> {
    const value = args[name];
    if (!isObject(value)) throw new InvalidInputError(`argument ${name} must be an object`);
    return value;
  },
};
