import { call, cast, defineContract, type Infer, type RpcApi, type RpcClient, rpcApi, s } from '@basalt/rpc';
import { computeCapabilities } from './compute-rpcapi';

const capabilityFields = {
  volume_backend_name: s.string(),
  /** The one pool of the backend (Cinder's `host@backend#pool` names it). */
  pool_name: s.string(),
  vendor_name: s.string(),
  driver_version: s.string(),
  storage_protocol: s.literal('iSCSI'),
  total_capacity_gb: s.number(),
  free_capacity_gb: s.number(),
  provisioned_capacity_gb: s.number(),
  reserved_percentage: s.number(),
  availability_zone: s.string(),
  thin_provisioning_support: s.boolean(),
  max_over_subscription_ratio: s.number(),
};
const volumeCapabilities = s.object(capabilityFields);

/** What a volume host reports about itself (Cinder's volume stats). */
export type VolumeCapabilities = Infer<typeof volumeCapabilities>;

const scheduleVolumeRequest = s.object({
  volume_id: s.string(),
  size: s.int(),
  availability_zone: s.string(),
  /** The volume type's extra specs, which a host's capabilities must satisfy. */
  extra_specs: s.optional(s.record(s.string())),
  /** The only host the volume may go to: its source's, for a volume made from a snapshot or a volume. */
  resource_backend: s.optional(s.string()),
});

/** What the API sends the scheduler about a new volume (Cinder's request spec). */
export type ScheduleVolumeRequest = Infer<typeof scheduleVolumeRequest>;

const pool = s.object({
  name: s.string(),
  capabilities: s.object({ ...capabilityFields, timestamp: s.string() }),
});

/** One pool as the scheduler knows it: Cinder's `host@backend#pool` and its host's last report. */
export type PoolInfo = Infer<typeof pool>;

const scheduleInstanceRequest = s.object({
  instance_uuid: s.string(),
  memory_mb: s.int(),
  vcpus: s.int(),
  root_gb: s.int(),
  ephemeral_gb: s.int(),
});

/** What placing an instance needs: its flavor's resources (nova's request spec, in small). */
export type ScheduleInstanceRequest = Infer<typeof scheduleInstanceRequest>;

/** The `scheduler` topic: Cinder's scheduler/rpcapi.py; `history` is its version history. */
export const SCHEDULER_CONTRACT = defineContract({
  topic: 'scheduler',
  history: [
    '1.0 - Initial version: create_volume, update_service_capabilities.',
    "1.1 - get_pools, backend_passes_filters; create_volume takes the volume type's extra_specs.",
    '1.2 - run_instance, update_compute_capabilities.',
    '1.3 - create_volume takes resource_backend, the host a volume made from a source must go to.',
  ],
  methods: {
    create_volume: cast({ since: '1.0', to: 'topic', args: scheduleVolumeRequest }),
    /** Sent by volume workers to every scheduler at once. */
    update_service_capabilities: cast({
      since: '1.0',
      to: 'fanout',
      args: s.object({ host: s.string(), service_name: s.string(), capabilities: volumeCapabilities }),
    }),
    /** The pools the scheduler knows, each with its host's last capability report. */
    get_pools: call({ since: '1.1', to: 'topic', args: s.object({}), result: s.array(pool) }),
    /**
     * Whether `host` passes the filters for a volume of this zone and type as it is (Cinder's
     * backend_passes_filters): a retype that needs no migration.
     */
    backend_passes_filters: call({
      since: '1.1',
      to: 'topic',
      args: s.object({ host: s.string(), availability_zone: s.string(), extra_specs: s.record(s.string()) }),
      result: s.boolean(),
    }),
    run_instance: cast({ since: '1.2', to: 'topic', args: scheduleInstanceRequest }),
    /** Sent by compute workers to every scheduler at once (their resources, not a volume host's). */
    update_compute_capabilities: cast({
      since: '1.2',
      to: 'fanout',
      args: s.object({ host: s.string(), capabilities: computeCapabilities }),
    }),
  },
});

export type SchedulerRpcApi = RpcApi<typeof SCHEDULER_CONTRACT>;
export const schedulerRpcApi = (client: RpcClient): SchedulerRpcApi => rpcApi(SCHEDULER_CONTRACT, client);
