import { call, cast, defineContract, type Infer, type RpcApi, type RpcClient, rpcApi, s } from '@basalt/rpc';
import { reconcileReport } from './reconcile';

const connector = s.object({
  ip: s.string(),
  initiator: s.string(),
  host: s.optional(s.string()),
});

/** os-brick's connector: who is connecting to a volume. */
export type Connector = Infer<typeof connector>;

const connectionInfo = s.object({
  driver_volume_type: s.literal('iscsi'),
  data: s.object({
    target_portal: s.string(),
    target_iqn: s.string(),
    target_lun: s.int(),
    target_discovered: s.boolean(),
    volume_id: s.string(),
    auth_method: s.literal('CHAP'),
    auth_username: s.string(),
    auth_password: s.string(),
  }),
});

/** What a compute host needs to reach a volume: os-brick's iSCSI connection properties. */
export type ConnectionInfo = Infer<typeof connectionInfo>;

const volume = s.object({ volume_id: s.string() });

/**
 * The `volume` topic, served by every volume worker on `volume.<host>`: Cinder's volume/rpcapi.py.
 * Each method is sent with the version that added it, so a caller works with every server of
 * that version or later; a server advertises the last version of the history.
 */
export const VOLUME_CONTRACT = defineContract({
  topic: 'volume',
  history: [
    '1.0 - Initial version: create, delete, extend, initialize/terminate connection, attach, detach, ' +
      'publish_service_capabilities.',
    '1.1 - reconcile: the host compared with the database, its own orphans removed.',
    '1.2 - Adds create_snapshot and delete_snapshot; create_volume makes a volume from the source its row names.',
    '1.3 - Adds copy_volume_to_image; create_volume also makes a volume from the image its row names.',
  ],
  methods: {
    create_volume: cast({ since: '1.0', to: 'server', args: volume }),
    delete_volume: cast({ since: '1.0', to: 'server', args: volume }),
    extend_volume: cast({
      since: '1.0',
      to: 'server',
      args: s.object({ volume_id: s.string(), new_size: s.int() }),
    }),
    initialize_connection: call({
      since: '1.0',
      to: 'server',
      args: s.object({ volume_id: s.string(), connector }),
      result: connectionInfo,
    }),
    terminate_connection: call({
      since: '1.0',
      to: 'server',
      args: s.object({ volume_id: s.string(), connector }),
      result: s.none(),
    }),
    /**
     * The volume, reserved (`attaching`) and connected through `connector`, is plugged into the
     * instance: that connection becomes the instance's attachment and the volume `in-use`.
     */
    attach_volume: call({
      since: '1.0',
      to: 'server',
      args: s.object({
        volume_id: s.string(),
        instance_uuid: s.string(),
        mountpoint: s.string(),
        connector,
        host_name: s.optional(s.string()),
      }),
      result: s.none(),
    }),
    /** After terminate_connection: a `detaching` volume is `available` once no attachment remains. */
    detach_volume: call({ since: '1.0', to: 'server', args: volume, result: s.none() }),
    /** The snapshot, `creating` on the volume's host, is taken (a point-in-time copy of the volume). */
    create_snapshot: cast({ since: '1.2', to: 'server', args: s.object({ snapshot_id: s.string() }) }),
    delete_snapshot: cast({ since: '1.2', to: 'server', args: s.object({ snapshot_id: s.string() }) }),
    /**
     * The volume, `uploading`, is read into the image (created `queued` by the API) through the
     * image API, then `available` again.
     */
    copy_volume_to_image: cast({
      since: '1.3',
      to: 'server',
      args: s.object({
        volume_id: s.string(),
        image_meta: s.object({ id: s.string(), disk_format: s.string(), container_format: s.string() }),
      }),
    }),
    /** Asks every volume host to report its capabilities now (a scheduler that just started knows none). */
    publish_service_capabilities: cast({ since: '1.0', to: 'fanout', args: s.object({}) }),
    /** The host's backend and tgtd compared with the database; with dry_run nothing is changed. */
    reconcile: call({
      since: '1.1',
      to: 'server',
      args: s.object({ dry_run: s.boolean() }),
      result: reconcileReport,
    }),
  },
});

export type VolumeRpcApi = RpcApi<typeof VOLUME_CONTRACT>;
export const volumeRpcApi = (client: RpcClient): VolumeRpcApi => rpcApi(VOLUME_CONTRACT, client);
