import { InvalidInputError } from '@basalt/errors';

/** An instance's hypervisor and folder name from its sequence number: `instance-%08x` by default. */
export function instanceName(template: string, id: number): string {
  if (!Number.isSafeInteger(id) || id < 0) throw new InvalidInputError(`Bad instance number ${id}`);
  return template.replace(/%(0?)(\d*)x/, (_m, zero: string, width: string) =>
    id.toString(16).padStart(Number(width || 0), zero === '0' ? '0' : ' '),
  );
}
