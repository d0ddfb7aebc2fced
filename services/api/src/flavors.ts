/** An instance type: what a server gets (nova's flavor). */
export interface Flavor {
  readonly id: string;
  readonly name: string;
  readonly vcpus: number;
  readonly ram: number;
  /** Root disk in GB; 0 gives a root disk the size of the image. */
  readonly disk: number;
  readonly ephemeral: number;
}

/** OpenStack's default flavors, with their ids. */
export const FLAVORS: readonly Flavor[] = [
  { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 0, ephemeral: 0 },
  { id: '2', name: 'm1.small', vcpus: 1, ram: 2048, disk: 10, ephemeral: 20 },
  { id: '3', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40, ephemeral: 40 },
  { id: '4', name: 'm1.large', vcpus: 4, ram: 8192, disk: 80, ephemeral: 80 },
  { id: '5', name: 'm1.xlarge', vcpus: 8, ram: 16384, disk: 160, ephemeral: 160 },
];

export function findFlavor(id: string): Flavor | undefined {
  return FLAVORS.find((f) => f.id === id);
}
