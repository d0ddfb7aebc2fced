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
