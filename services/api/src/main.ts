import type { AddressInfo } from 'node:net';
import { computeRpcApi, schedulerRpcApi, volumeRpcApi } from '@basalt/contracts';
import {
  AttachmentRepository,
  BlockDeviceMappingRepository,
  ImageRepository,
  InstanceActionRepository,
  InstanceRepository,
  MessageRepository,
  QuotaRepository,
  ServiceDirectory,
  SnapshotRepository,
  TransferRepository,
  VolumeRepository,
  VolumeTypeRepository,
} from '@basalt/db';
import { ImageApi } from '@basalt/images';
import { runService } from '@basalt/service';
import { TraceStore } from '@basalt/trace';
import type { FastifyInstance } from 'fastify';
import { type Authenticator, BuiltinAuthenticator, NoAuthAuthenticator } from './auth';
import { ComputeApi } from './compute-api';
import { buildComputeApp } from './compute-app';
import { createHttpApp } from './http';
import { registerIdentityRoutes } from './identity-app';
import { IdentityStore } from './identity-store';
import { buildImageApp } from './image-app';
import { KeystoneAuthenticator, keystoneAuthOptions } from './keystone-authenticator';
import { loadPolicyFile, Policy } from './policy';
import { POLICY_DEFAULTS } from './policy-defaults';
import { RateLimiter } from './rate-limit';
import { SnapshotApi } from './snapshot-api';
import { TokenSigner } from './tokens';
import { VolumeApi } from './volume-api';
import { buildVolumeApp } from './volume-app';

void runService({
  binary: 'basalt-api',
  topic: 'api',
  async build({ config, log, db, rpc }) {
    const a = config.api;
    // asked for in every volume view: the port is read once, after the server listens
    const urlOf = (app: FastifyInstance, configured: string) => {
      let url: string | undefined;
      return () =>
        (url ??=
          configured || `http://${a.osapi_volume_listen}:${(app.server.address() as AddressInfo).port}`);
    };
    const policyFile = config.oslo_policy.policy_file;
    const policy = new Policy(POLICY_DEFAULTS, policyFile ? loadPolicyFile(policyFile) : {});
    // one limiter for every API of the process: a client's requests count together
    const rateLimiter = new RateLimiter({ ratePerSec: a.rate_limit, burst: a.rate_limit_burst });
    // the built-in identity API is served unless a real Keystone is the identity service
    const identityApp =
      a.auth_strategy === 'keystone' ? undefined : createHttpApp(log, a.max_request_body_size, rateLimiter);
    const identityUrl = identityApp ? urlOf(identityApp, a.identity_public_endpoint) : undefined;
    const signer = new TokenSigner(config.identity.token_secret);
    const authenticators: Record<typeof a.auth_strategy, () => Authenticator> = {
      noauth: () => new NoAuthAuthenticator(),
      builtin: () => new BuiltinAuthenticator(signer, identityUrl as () => string),
      keystone: () => new KeystoneAuthenticator(keystoneAuthOptions(config.keystone_authtoken), log),
    };
    const authenticator = authenticators[a.auth_strategy]();
    const quotaDefaults = { ...config.quota };
    const volumes = new VolumeRepository(db);
    const snapshots = new SnapshotRepository(db);
    const volumeRpc = volumeRpcApi(rpc.client);
    const quotas = new QuotaRepository(db);
    const types = new VolumeTypeRepository(db);
    const attachments = new AttachmentRepository(db);
    const services = new ServiceDirectory(db, config.DEFAULT.service_down_time);
    const scheduler = schedulerRpcApi(rpc.client);

    const volumeApi = new VolumeApi(
      {
        services,
        volumes,
        snapshots,
        attachments,
        types,
        scheduler,
        volumeRpc,
        log,
      },
      {
        nameTemplate: config.volume.volume_name_template,
        defaultZone: config.DEFAULT.storage_availability_zone,
        quotaDefaults,
        defaultVolumeType: config.DEFAULT.default_volume_type,
      },
    );

    let volumeUrl = () => a.public_endpoint;
    const volumeApp = await buildVolumeApp(
      {
        log,
        bodyLimit: a.max_request_body_size,
        authenticator,
        policy,
        rateLimiter,
        ready: async () =>
          rpc.connection.isUp &&
          (await db.query('SELECT 1').then(
            () => true,
            () => false,
          )),
      },
      {
        api: volumeApi,
        snapshotApi: new SnapshotApi({ volumes: volumeApi, snapshots, volumeRpc, log }, { quotaDefaults }),
        snapshots,
        volumes,
        attachments,
        quotas,
        messages: new MessageRepository(db, config.DEFAULT.message_ttl),
        types,
        transfers: new TransferRepository(db),
        scheduler,
        services,
        quotaDefaults,
        traces: new TraceStore(db),
        maxLimit: a.osapi_max_limit,
        baseUrl: () => volumeUrl(),
        imagesFor: (token) => new ImageApi({ url: config.glance.api_servers, token: async () => token }),
      },
    );
    volumeUrl = urlOf(volumeApp, a.public_endpoint);

    const images = new ImageRepository(db);
    const instances = new InstanceRepository(db);
    const actions = new InstanceActionRepository(db);
    let computeUrl = () => a.compute_public_endpoint;
    const listener = { log, bodyLimit: a.max_request_body_size, authenticator, policy, rateLimiter };
    const computeApp = buildComputeApp(listener, {
      api: new ComputeApi({
        instances,
        images,
        volumes,
        mappings: new BlockDeviceMappingRepository(db),
        actions,
        scheduler,
        compute: computeRpcApi(rpc.client),
      }),
      actions,
      instances,
      maxLimit: a.osapi_max_limit,
      nameTemplate: config.compute.instance_name_template,
      baseUrl: () => computeUrl(),
    });
    computeUrl = urlOf(computeApp, a.compute_public_endpoint);
    let imageUrl = () => a.image_public_endpoint;
    const imageApp = buildImageApp(listener, {
      images,
      dataDir: config.glance_store.filesystem_store_datadir,
      sizeCap: config.glance_store.image_size_cap,
      baseUrl: () => imageUrl(),
    });
    imageUrl = urlOf(imageApp, a.image_public_endpoint);

    if (identityApp && identityUrl) {
      registerIdentityRoutes(
        identityApp,
        { store: new IdentityStore(config.identity.users), signer },
        {
          identityUrl,
          volumeUrl,
          computeUrl,
          imageUrl,
          expirationSec: config.identity.token_expiration,
        },
      );
    }

    return {
      async start() {
        await volumeApp.listen({ host: a.osapi_volume_listen, port: a.osapi_volume_listen_port });
        await identityApp?.listen({ host: a.osapi_volume_listen, port: a.identity_listen_port });
        await computeApp.listen({ host: a.osapi_volume_listen, port: a.osapi_compute_listen_port });
        await imageApp.listen({ host: a.osapi_volume_listen, port: a.image_listen_port });
        log.info(
          {
            volume_api: volumeUrl(),
            identity_api: identityUrl?.() ?? config.keystone_authtoken.auth_url,
            compute_api: computeUrl(),
            image_api: imageUrl(),
            auth_strategy: a.auth_strategy,
          },
          'listening',
        );
      },
      async stop() {
        await Promise.all([volumeApp.close(), identityApp?.close(), computeApp.close(), imageApp.close()]);
      },
    };
  },
});
