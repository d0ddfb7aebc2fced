import { type ClientMiddleware, RpcClient } from './client';
import { AmqpConnection } from './connection';
import type { RpcOptions } from './options';
import { RpcServer, type ServerOptions } from './server';

/** A process's link to the broker: one connection, one client, any number of servers. */
export class RpcTransport {
  readonly connection: AmqpConnection;
  readonly client: RpcClient;
  private readonly servers: RpcServer[] = [];

  /** `clientMiddlewares` wrap every call and cast the client sends, the first the outermost. */
  constructor(
    readonly options: RpcOptions,
    clientMiddlewares: readonly ClientMiddleware[] = [],
  ) {
    this.connection = new AmqpConnection(options.url, options);
    this.client = new RpcClient(this.connection, options, clientMiddlewares);
  }

  static async connect(
    options: RpcOptions,
    clientMiddlewares: readonly ClientMiddleware[] = [],
  ): Promise<RpcTransport> {
    const transport = new RpcTransport(options, clientMiddlewares);
    await transport.connection.start();
    await transport.client.start();
    return transport;
  }

  async serve(options: ServerOptions): Promise<RpcServer> {
    const server = new RpcServer(this.connection, this.options, options);
    await server.start();
    this.servers.push(server);
    return server;
  }

  /** Stops consuming, lets handlers in flight finish (up to `graceMs`), then closes the connection. */
  async close(graceMs = 0): Promise<void> {
    await Promise.all(this.servers.map((server) => server.stop(graceMs)));
    this.client.stop();
    await this.connection.close();
  }
}
