import { call, cast, defineContract, type Infer, type RpcApi, type RpcClient, rpcApi, s } from '@basalt/rpc';

import { reconcileReport } from './reconcile';

const instance = s.object({ instance_uuid: s.string() });
const volume = s.object({ instance_uuid: s.string(), volume_id: s.string() });

export const computeCapabilities = s.object({
  memory_mb: s.int(),
  vcpus: s.int(),
  local_gb: s.int(),
  /** What the host's own instances (as the database lists them) already take. */
  memory_mb_used: s.int(),
  vcpus_used: s.int(),
  local_gb_used: s.int(),
  hypervisor_type: s.literal('QEMU'),
  availability_zone: s.string(),
});

/** What a compute host reports about itself (nova's host state, in small). */
export type ComputeCapabilities = Infer<typeof computeCapabilities>;

export type RebootType = 'SOFT' | 'HARD';

/**
 * The `compute` topic, served by every compute worker on `compute.<host>`: nova's
 * compute/rpcapi.py. Every method is a cast: the API and the scheduler record the state change
 * first, and the worker's outcome is the next one.
 */
export const COMPUTE_CONTRACT = defineContract({
  topic: 'compute',
  history: [
    '1.0 - Initial version: run, terminate and reboot instances, attach and detach volumes, ' +
      'publish_service_capabilities.',
    '1.1 - reconcile: domains, secrets and instance folders compared with the database, its own orphans removed.',
    "1.2 - extend_volume: an attached volume grew; the guest's disk is resized to its new size.",
  ],
  methods: {
    run_instance: cast({ since: '1.0', to: 'server', args: instance }),
    terminate_instance: cast({ since: '1.0', to: 'server', args: instance }),
    reboot_instance: cast({
      since: '1.0',
      to: 'server',
      args: s.object({
        instance_uuid: s.string(),
        reboot_type: s.oneOf('SOFT', 'HARD'),
      }),
    }),
    attach_volume: cast({
      since: '1.0',
      to: 'server',
      args: s.object({ instance_uuid: s.string(), volume_id: s.string(), mountpoint: s.string() }),
    }),
    detach_volume: cast({ since: '1.0', to: 'server', args: volume }),
    /**
     * The volume host grew an attached volume (nova's external event volume-extended): the guest's
     * disk takes the volume's new size, recorded as the event compute_extend_volume of the
     * request's instance action.
     */
    extend_volume: cast({ since: '1.2', to: 'server', args: volume }),
    /** Asks every compute host to report its resources now (a scheduler that just started knows none). */
    publish_service_capabilities: cast({ since: '1.0', to: 'fanout', args: s.object({}) }),
    /** The host's domains, secrets and instance folders compared with the database; with dry_run nothing is changed. */
    reconcile: call({
      since: '1.1',
      to: 'server',
      args: s.object({ dry_run: s.boolean() }),
      result: reconcileReport,
    }),
  },
});

export type ComputeRpcApi = RpcApi<typeof COMPUTE_CONTRACT>;
export const computeRpcApi = (client: RpcClient): ComputeRpcApi => rpcApi(COMPUTE_CONTRACT, client);
