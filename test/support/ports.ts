import { connect, createServer } from 'node:net';

/** Ports the kernel never hands out as the local end of a connection (below its ephemeral range). */
const FIRST = 20_000;
const LAST = 32_000;

/**
 * A TCP port on 127.0.0.1 nothing listens on now, for a service started later. Taken below the
 * kernel's ephemeral range: there, any process's outgoing connection (to PostgreSQL, RabbitMQ)
 * could take the port as its own end before the service binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST));
    if (await bindable(port)) return port;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
