import { hostname } from 'node:os';
import { opt } from './option';

/** Host names and topics become AMQP queue names and tgt/LVM names: keep them to a safe alphabet. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

/**
 * Every option Basalt reads, in one place: `basalt config sample` prints them with their defaults.
 * Section and option names follow nova.conf where nova-volume had an equivalent.
 */
export const schema = {
  DEFAULT: {
    host: opt.string(hostname(), 'Name of this host: the server part of RPC topics and the services row.', {
      pattern: HOST_NAME,
    }),
    storage_availability_zone: opt.string('nova', 'Availability zone this host reports.'),
    log_level: opt.choice(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace'],
      'info',
      'Lowest log level written.',
    ),
    report_interval: opt.number(10, 'Seconds between heartbeats into the services table.', { min: 0.1 }),
    service_down_time: opt.number(60, 'Seconds without a heartbeat after which a service counts as down.', {
      min: 1,
    }),
    shutdown_timeout: opt.number(60, 'Seconds SIGTERM waits for in-flight handlers before exiting.', {
      min: 0,
    }),
    resume_stalled_after: opt.number(
      20,
      'Seconds an unfinished create, delete or extend may sit untouched, with no process working on it, before the service responsible resumes it (its message was lost with the process that was to send it). With periodic_interval, this bounds how long a volume stays in a transitional state once its services and their dependencies are back.',
      { min: 0.1 },
    ),
    default_volume_type: opt.string(
      '__DEFAULT__',
      'Volume type (name or id) of volumes created without one.',
    ),
    message_ttl: opt.int(2592000, 'Seconds a user message is kept and shown after it was written.', {
      min: 1,
    }),
    message_reap_interval: opt.number(
      86400,
      "Seconds between the scheduler's deletions of the user messages older than message_ttl (until then they are only hidden).",
      { min: 0.1 },
    ),
    periodic_interval: opt.number(
      10,
      'Seconds between runs of the tasks that finish what a lost message left: the scheduler places volumes left without a host, each volume worker resumes its stalled creates, deletes and extends.',
      { min: 0.1 },
    ),
    handler_attempts: opt.int(
      4,
      'Tries an RPC handler gets when it fails with an error worth retrying (a dropped database connection, a deadlock); handlers are idempotent, so a retry is harmless.',
      { min: 1 },
    ),
    handler_retry_backoff: opt.number(
      0.25,
      'Seconds before the first retry of a handler; doubled each time.',
      {
        min: 0,
      },
    ),
  },
  rabbit: {
    transport_url: opt.string('amqp://guest:guest@127.0.0.1:5672/', 'AMQP URL of the broker.', {
      secret: true,
    }),
    control_exchange: opt.string(
      'nova',
      'Topic exchange that RPC requests go through (oslo control_exchange).',
    ),
    amqp_durable_queues: opt.bool(
      true,
      'Declare the control exchange and request queues durable and publish casts persistent.',
    ),
    rabbit_quorum_queue: opt.bool(
      false,
      'Declare request queues as quorum queues (replicated; implies durable).',
    ),
    rabbit_transient_queues_ttl: opt.int(1800, 'Seconds an unused reply or fanout queue lives (x-expires).', {
      min: 1,
    }),
    prefetch_count: opt.int(64, 'Messages a server takes at once (handlers run concurrently up to this).', {
      min: 1,
    }),
    rpc_response_timeout: opt.number(60, 'Seconds a call waits for its reply.', { min: 0.01 }),
    dead_letter_queue: opt.string(
      'basalt.dead_letter',
      'Queue that unparseable or undeliverable requests go to.',
    ),
    connect_retries: opt.int(5, 'Attempts to reach the broker at start before giving up.', { min: 1 }),
    reconnect_delay_max: opt.number(10, 'Upper bound, in seconds, of the reconnect backoff.', { min: 0.1 }),
  },
  api: {
    osapi_volume_listen: opt.string('127.0.0.1', 'Address the volume API (Cinder v3) listens on.'),
    osapi_volume_listen_port: opt.int(8776, 'Port of the volume API (0 picks a free one).', {
      min: 0,
      max: 65535,
    }),
    identity_listen_port: opt.int(5000, 'Port of the built-in identity API (0 picks a free one).', {
      min: 0,
      max: 65535,
    }),
    public_endpoint: opt.string(
      '',
      'Base URL clients reach the volume API at (default: http://<listen>:<port>).',
    ),
    identity_public_endpoint: opt.string(
      '',
      'Base URL clients reach the identity API at (default: http://<listen>:<port>).',
    ),
    auth_strategy: opt.choice(
      ['builtin', 'keystone', 'noauth'],
      'builtin',
      "builtin: tokens of the api's own identity API ([identity]); keystone: every token validated by the Keystone of [keystone_authtoken]; noauth: X-Auth-Token user:project, for development.",
    ),
    max_request_body_size: opt.int(
      1048576,
      'Largest request body accepted, in bytes; a larger one is refused with 413.',
      { min: 1024 },
    ),
    rate_limit: opt.number(
      50,
      'Requests per second each client (its token, else its address) may make on average; more are refused with 429 and Retry-After (0: no limit).',
      { min: 0 },
    ),
    rate_limit_burst: opt.int(200, 'Requests a client may make at once before rate_limit applies.', {
      min: 1,
    }),
    osapi_max_limit: opt.int(1000, 'Most items one list request returns.', { min: 1 }),
    osapi_compute_listen_port: opt.int(
      8774,
      'Port of the compute API (Nova v2.1 subset; 0 picks a free one).',
      {
        min: 0,
        max: 65535,
      },
    ),
    image_listen_port: opt.int(9292, 'Port of the image API (Glance v2 subset; 0 picks a free one).', {
      min: 0,
      max: 65535,
    }),
    compute_public_endpoint: opt.string(
      '',
      'Base URL clients reach the compute API at (default: http://<listen>:<port>).',
    ),
    image_public_endpoint: opt.string(
      '',
      'Base URL clients reach the image API at (default: http://<listen>:<port>).',
    ),
  },
  identity: {
    token_secret: opt.string(
      '',
      'HMAC key that signs tokens; every api process must share it (empty: random at start).',
      {
        secret: true,
      },
    ),
    token_expiration: opt.int(3600, 'Seconds a token is valid.', { min: 60 }),
    users: opt.list(
      ['admin:admin:admin:admin'],
      'Users as name:password:project:role (role admin, member or reader).',
      { secret: true },
    ),
  },
  oslo_policy: {
    policy_file: opt.string(
      '',
      'YAML or JSON file mapping policy rule names (volume:create, os_compute_api:servers:create, …) to check strings that replace their defaults; an unknown rule or a bad check string stops the api at start.',
    ),
  },
  keystone_authtoken: {
    www_authenticate_uri: opt.string(
      '',
      'Identity URL a refused client is sent to, in WWW-Authenticate (default: auth_url).',
    ),
    auth_url: opt.string(
      '',
      'Keystone v3 URL the service user authenticates at and tokens are validated at.',
    ),
    username: opt.string('', 'Service user that validates tokens (needs the service or admin role).'),
    password: opt.string('', "The service user's password.", { secret: true }),
    project_name: opt.string('service', "Project the service user's token is scoped to."),
    user_domain_name: opt.string('Default', 'Domain of the service user.'),
    project_domain_name: opt.string('Default', "Domain of the service user's project."),
    token_cache_size: opt.int(
      10000,
      'Validated tokens remembered at once; the least recently used goes first.',
      {
        min: 0,
      },
    ),
    token_cache_time: opt.int(
      300,
      "Seconds a validation is trusted before Keystone is asked again (never past the token's expiry); a revoked token works until then.",
      { min: 0 },
    ),
    http_connect_timeout: opt.number(
      5,
      'Seconds a request to Keystone may take before it counts as unreachable.',
      {
        min: 0.1,
      },
    ),
  },
  quota: {
    volumes: opt.int(10, 'Default number of volumes a project may have (-1: unlimited).', { min: -1 }),
    snapshots: opt.int(10, 'Default number of snapshots a project may have (-1: unlimited).', { min: -1 }),
    gigabytes: opt.int(1000, 'Default total volume gigabytes a project may have (-1: unlimited).', {
      min: -1,
    }),
    backups: opt.int(10, 'Default number of backups a project may have (-1: unlimited).', { min: -1 }),
    backup_gigabytes: opt.int(1000, 'Default total backup gigabytes a project may have (-1: unlimited).', {
      min: -1,
    }),
    per_volume_gigabytes: opt.int(-1, 'Default largest size of one volume in gigabytes (-1: unlimited).', {
      min: -1,
    }),
    groups: opt.int(10, 'Default number of volume groups a project may have (-1: unlimited).', { min: -1 }),
  },
  scheduler: {
    ram_allocation_ratio: opt.number(1.5, "Times a compute host's RAM may be promised to instances.", {
      min: 0.01,
    }),
    cpu_allocation_ratio: opt.number(16, 'Virtual CPUs per physical CPU of a compute host.', { min: 0.01 }),
    disk_allocation_ratio: opt.number(1, "Times a compute host's instance disk space may be promised.", {
      min: 0.01,
    }),
    capabilities_wait: opt.number(
      10,
      "Seconds a scheduler that just started waits for every live volume host's first capability report before placing a volume on what it has heard so far (requests queued while it was down must not fail for want of a report).",
      { min: 0 },
    ),
    capabilities_max_age: opt.number(
      60,
      "Seconds after which a host's reported capabilities are too old to use.",
      {
        min: 1,
      },
    ),
  },
  volume: {
    volume_driver: opt.choice(
      ['lvm', 'file'],
      'lvm',
      'Backend: LVM logical volumes, or sparse files in a directory.',
    ),
    volume_group: opt.string('nova-volumes', 'LVM volume group that holds the volumes.', {
      pattern: /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/,
    }),
    lvm_system_dir: opt.string('', 'LVM_SYSTEM_DIR for LVM commands (e.g. an lvm.conf with activation = 0).'),
    volumes_path: opt.string('/var/lib/basalt/volumes', "Directory of the file backend's volume files."),
    image_conversion_dir: opt.string(
      '/var/lib/basalt/conversion',
      'Directory where an image is downloaded before it is written into a new volume, and a volume converted before it is uploaded.',
    ),
    volume_name_template: opt.string(
      'volume-%08x',
      'Backend name of a volume: %08x takes its sequence number, %s its id.',
    ),
    reserved_percentage: opt.int(0, 'Capacity held back from scheduling, in percent.', { min: 0, max: 100 }),
    max_over_subscription_ratio: opt.number(
      1,
      'For thin backends (file): how many times the capacity may be promised.',
      {
        min: 1,
      },
    ),
    report_capabilities_interval: opt.number(10, 'Seconds between capacity reports to the schedulers.', {
      min: 0.1,
    }),
    export_check_interval: opt.number(
      30,
      'Seconds between checks that tgtd still serves every available and in-use volume; a tgtd that restarted gets its exports back within this time.',
      { min: 0.1 },
    ),
    reconcile_interval: opt.number(
      600,
      'Seconds between comparisons of the database with the backend and tgtd (also made at start): orphans this host made are removed, anything else is reported in the log.',
      { min: 1 },
    ),
    iscsi_target_prefix: opt.string('iqn.2010-10.org.openstack:', 'Prefix of target IQNs.'),
    iscsi_ip_address: opt.string('127.0.0.1', "Address initiators reach this host's iSCSI portal at."),
    iscsi_port: opt.int(3260, 'Port of the iSCSI portal.', { min: 1, max: 65535 }),
    tgt_control_port: opt.int(
      0,
      "Control port of the tgtd that exports this host's volumes (tgtd -C / tgtadm -C); the worker talks to it on /var/run/tgtd/socket.<port>.",
      { min: 0 },
    ),
    volumes_dir: opt.string(
      '/var/lib/basalt/tgt',
      'Directory of per-target tgt config files (tgt-admin format).',
    ),
    max_targets: opt.int(1000, 'Highest iSCSI target number this host hands out.', { min: 1 }),
    secret_keys: opt.list(
      [],
      "Keys that encrypt volumes' CHAP secrets in the database (AES-256-GCM), as id:base64 of 32 bytes; the first encrypts, every one listed decrypts, so a key is rotated by putting a new one first. The volume worker refuses to start without one.",
      { secret: true },
    ),
  },
  glance_store: {
    filesystem_store_datadir: opt.string(
      '/var/lib/basalt/images',
      'Directory of the image files the image API serves (one file per image, named by its id).',
    ),
    image_size_cap: opt.int(
      1099511627776,
      "Largest image data one upload stores, in bytes (Glance's image_size_cap); a larger upload is refused with 413.",
      { min: 1 },
    ),
  },
  glance: {
    api_servers: opt.string(
      'http://127.0.0.1:9292',
      'URL of the image API (Glance v2) the api, the volume workers and the compute workers use; a real Glance will do.',
    ),
  },
  nova: {
    compute_url: opt.string(
      '',
      "URL of the compute API (Nova v2.1, e.g. http://127.0.0.1:8774/v2.1) the volume worker tells, as the service user, when it has extended an attached volume (os-server-external-events volume-extended); empty: no one is told and the guest's disk keeps its size.",
    ),
  },
  service_user: {
    auth_url: opt.string(
      '',
      "Keystone v3 URL the workers take their token for the other services' APIs from (the compute and volume workers' for the image API, the volume worker's for the compute API; empty: the noauth token username:project_name).",
    ),
    username: opt.string(
      'nova',
      'User the workers authenticate as (an admin: the compute API takes external events from admins only).',
    ),
    password: opt.string('', "That user's password.", { secret: true }),
    project_name: opt.string('service', "That user's project."),
  },
  compute: {
    virt_type: opt.choice(
      ['kvm', 'qemu'],
      'kvm',
      "Domain type of the guests (<domain type='...'>): kvm needs hardware virtualisation, qemu is TCG emulation.",
    ),
    libvirt_uri: opt.string('qemu:///system', 'libvirt connection URI that virsh -c is given.'),
    instance_name_template: opt.string(
      'instance-%08x',
      'Name of an instance on the hypervisor and of its folder: %08x takes its sequence number.',
      { pattern: /^[A-Za-z0-9_-]*%0?\d*x[A-Za-z0-9_-]*$/ },
    ),
    instances_path: opt.string(
      '/var/lib/basalt/instances',
      'Directory of the instance folders (instance-%08x/) and the image cache (_base/).',
    ),
    volume_connector: opt.choice(
      ['iscsiadm', 'qemu'],
      'iscsiadm',
      "How guests reach volumes: iscsiadm logs the host's open-iscsi initiator in and attaches the block device; qemu gives QEMU's built-in iSCSI initiator a libvirt network disk (for hosts without the kernel initiator).",
    ),
    initiator_iqn: opt.string(
      '',
      "This host's iSCSI initiator name, sent with initialize_connection so the target's ACL can name it (empty: read /etc/iscsi/initiatorname.iscsi, else iqn.2010-10.org.basalt:<host>).",
      { pattern: /^$|^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[A-Za-z0-9_.:-]+)?$/ },
    ),
    my_ip: opt.string('127.0.0.1', 'Address of this host that volume hosts see its initiator connect from.'),
    serial_shell: opt.bool(
      false,
      'Give every guest a second serial port bound to a unix socket (instance folder, shell.sock); for test images that run a shell on ttyS1.',
    ),
    device_detach_timeout: opt.number(
      20,
      'Seconds a volume detach waits for the guest to release the disk (virsh domblklist no longer listing it).',
      { min: 0.1 },
    ),
    device_detach_attempts: opt.int(
      8,
      'Unplug requests a volume detach sends within device_detach_timeout, evenly spaced, while the guest still holds the disk: a guest still booting ignores the first (nova retries likewise).',
      { min: 1 },
    ),
    wait_soft_reboot_seconds: opt.number(
      120,
      'Seconds a soft reboot waits for the guest to shut down on ACPI before falling back to a hard reboot.',
      { min: 0 },
    ),
    volume_device_timeout: opt.number(
      30,
      'Seconds the iscsiadm connector waits for /dev/disk/by-path/... to appear after login.',
      { min: 0.1 },
    ),
    iscsi_nodes_dir: opt.string(
      '/etc/iscsi/nodes',
      "open-iscsi's node database: the iscsiadm connector writes each node record's CHAP settings into its file there (mode 0600), so the password is never on iscsiadm's command line.",
    ),
    max_guest_memory_mb: opt.int(
      0,
      "Caps every guest's memory at this many MB whatever its flavor says (0: the flavor's); for test hosts smaller than the flavors. The scheduler still counts the flavor's RAM.",
      { min: 0 },
    ),
    report_capabilities_interval: opt.number(10, 'Seconds between resource reports to the schedulers.', {
      min: 0.1,
    }),
    reconcile_interval: opt.number(
      600,
      "Seconds between comparisons of the database with libvirt's domains and secrets and the instance folders (also made at start): orphans this host made are removed, anything else is reported in the log.",
      { min: 1 },
    ),
  },
  trace: {
    enabled: opt.bool(
      true,
      'Record a span for every HTTP request, RPC message sent and handled, status change, command and tgtd request.',
    ),
    retention: opt.number(
      604800,
      'Seconds stored spans are kept in the trace_spans table; older ones are purged.',
      { min: 60 },
    ),
    otlp_endpoint: opt.string(
      '',
      'OTLP/HTTP traces URL (http://collector:4318/v1/traces) that gets the same spans besides the database (empty: none).',
    ),
    max_queue_size: opt.int(
      8192,
      'Finished spans a process holds for export at most; beyond that they are dropped and counted (basalt_trace_spans_dropped_total).',
      { min: 1 },
    ),
  },
  metrics: {
    enabled: opt.bool(true, "Serve this process's Prometheus metrics on /metrics."),
    listen: opt.string('127.0.0.1', 'Address the metrics endpoint listens on.'),
    listen_port: opt.int(
      0,
      "Port of this process's metrics endpoint, one per process on a host (0 picks a free one, logged at start).",
      { min: 0, max: 65535 },
    ),
  },
  database: {
    connection: opt.string('postgres://postgres@127.0.0.1:5432/basalt', 'PostgreSQL URL.', { secret: true }),
    connect_retries: opt.int(5, 'Attempts to reach the database at start before giving up.', { min: 1 }),
    pool_size: opt.int(10, 'Connections per process.', { min: 1 }),
    idle_timeout: opt.number(
      300,
      'Seconds an unused pooled connection stays open. A new PostgreSQL backend costs milliseconds of CPU to start and warm its caches, so connections outlive the pauses between heartbeats and bursts.',
      { min: 1 },
    ),
  },
} as const;

export type BasaltConfig = import('./option').ConfigOf<typeof schema>;
