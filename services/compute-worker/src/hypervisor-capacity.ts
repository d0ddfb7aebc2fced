import { readFile, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { GiB } from '@basalt/naming';
import { exists } from './exists';

/** What a compute host offers, for its fanout capability reports (Nova's get_available_resource). */
export interface HypervisorCapacity {
  readonly vcpus: number;
  readonly memoryMb: number;
  /** Memory the kernel could hand out now (MemAvailable). */
  readonly freeMemoryMb: number;
  /** Size of the filesystem holding `[compute] instances_path`. */
  readonly localGb: number;
  readonly freeLocalGb: number;
}

const MIB = 1024 ** 2;

/** This host's vCPUs, memory (from /proc/meminfo) and the space of the filesystem under `instancesPath`. */
export async function hypervisorCapacity(
  instancesPath: string,
  meminfo = '/proc/meminfo',
): Promise<HypervisorCapacity> {
  const memory = await readFile(meminfo, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(memory)?.[1] ?? 0);
  const fs = await statfs(await nearestExisting(instancesPath));
  return {
    vcpus: availableParallelism(),
    memoryMb: Math.floor((kib('MemTotal') * 1024) / MIB),
    freeMemoryMb: Math.floor((kib('MemAvailable') * 1024) / MIB),
    localGb: Math.floor((fs.blocks * fs.bsize) / GiB),
    freeLocalGb: Math.floor((fs.bavail * fs.bsize) / GiB),
  };
}

/** instances_path itself may not exist before the first instance: its filesystem is its parent's. */
async function nearestExisting(path: string): Promise<string> {
  let current = resolve(path);
  while (!(await exists(current)) && dirname(current) !== current) current = dirname(current);
  return current;
}
