import type { AddressInfo } from 'node:net';
import { schedulerRpcApi, volumeRpcApi } from '@basalt/contracts';
import { AttachmentRepository, QuotaRepository, ServiceDirectory, VolumeRepository } from '@basalt/db';
import { runService } from '@basalt/service';
import type { FastifyInstance } from 'fastify';
import { type Authenticator, NoAuthAuthenticator, TokenAuthenticator } from './auth';
import { createHttpApp } from './http';
import { registerIdentityRoutes } from './identity-app';
import { IdentityStore } from './identity-store';
import { loadPolicyFile, Policy } from './policy';
import { POLICY_DEFAULTS } from './policy-defaults';
import { RateLimiter } from './rate-limit';
import { TokenSigner } from './tokens';
import { VolumeApi } from './volume-api';
import { buildVolumeApp } from './volume-app';

void runService({
  binary: 'basalt-api',
  topic: 'api',
  async build({ config, log, db, rpc }) {
    const a = config.api;
    const signer = new TokenSigner(config.identity.token_secret);
    const authenticator: Authenticator =
      a.auth_strategy === 'noauth' ? new NoAuthAuthenticator() : new TokenAuthenticator(signer);
    const store = new IdentityStore(config.identity.users);
    const policyFile = config.oslo_policy.policy_file;
    const policy = new Policy(POLICY_DEFAULTS, policyFile ? loadPolicyFile(policyFile) : {});
    // one limiter for every API of the process: a client's requests count together
    const rateLimiter = new RateLimiter({ ratePerSec: a.rate_limit, burst: a.rate_limit_burst });
    // asked for in every volume view: the port is read once, after the server listens
    const urlOf = (app: FastifyInstance, configured: string) => {
      let url: string | undefined;
      return () =>
        (url ??=
          configured || `http://${a.osapi_volume_listen}:${(app.server.address() as AddressInfo).port}`);
    };
    const quotaDefaults = { volumes: config.quota.volumes, gigabytes: config.quota.gigabytes };
    const volumes = new VolumeRepository(db);
    const quotas = new QuotaRepository(db);

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
        api: new VolumeApi(
          {
            services: new ServiceDirectory(db, config.DEFAULT.service_down_time),
            volumes,
            scheduler: schedulerRpcApi(rpc.client),
            volumeRpc: volumeRpcApi(rpc.client),
            log,
          },
          {
            nameTemplate: config.volume.volume_name_template,
            defaultZone: config.DEFAULT.storage_availability_zone,
            quotaDefaults,
          },
        ),
        volumes,
        attachments: new AttachmentRepository(db),
        quotas,
        quotaDefaults,
        maxLimit: a.osapi_max_limit,
        baseUrl: () => volumeUrl(),
      },
    );
    volumeUrl = urlOf(volumeApp, a.public_endpoint);

    const identityApp = createHttpApp(log, a.max_request_body_size, rateLimiter);
    const identityUrl = urlOf(identityApp, a.identity_public_endpoint);
    registerIdentityRoutes(
      identityApp,
      { store, signer },
      {
        identityUrl,
        volumeUrl,
        computeUrl: () => volumeUrl().replace(/:\d+$/, ':8774'),
        expirationSec: config.identity.token_expiration,
      },
    );

    return {
      async start() {
        await volumeApp.listen({ host: a.osapi_volume_listen, port: a.osapi_volume_listen_port });
        await identityApp.listen({ host: a.osapi_volume_listen, port: a.identity_listen_port });
        log.info(
          { volume_api: volumeUrl(), identity_api: identityUrl(), auth_strategy: a.auth_strategy },
          'listening',
        );
      },
      async stop() {
        await Promise.all([volumeApp.close(), identityApp.close()]);
      },
    };
  },
});
