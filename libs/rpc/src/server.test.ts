import { adminContext } from '@basalt/context';
import { ConflictError } from '@basalt/errors';
import { call, cast, contractEndpoint, defineContract } from './contract';
import { type FakeChannel, FakeConnection, fakeRpcOptions } from './fake-amqp';
import { s } from './schema';
import { type Middleware, RpcServer, type ServerOptions } from './server';
import { contextFields, decodeEnvelope, encodeEnvelope } from './wire';

const options = fakeRpcOptions;

const contract = defineContract({
  topic: 'volume',
  history: ['1.0 - Initial version.', '1.1 - Adds extend.'],
  methods: {
    create: cast({ since: '1.0', to: 'server', args: s.object({ volume_id: s.string() }) }),
    extend: call({
      since: '1.1',
      to: 'server',
      args: s.object({ volume_id: s.string(), new_size: s.int() }),
      result: s.int(),
    }),
  },
});

async function serving(extra: Partial<ServerOptions> = {}) {
  const runs: Array<Record<string, unknown>> = [];
  const endpoint = contractEndpoint(contract, {
    create: async (args) => {
      runs.push(args);
    },
    extend: async (args) => {
      runs.push(args);
      if (args.new_size < 0) throw new ConflictError('volume v1 is attaching');
      return args.new_size;
    },
  });
  const connection = new FakeConnection();
  const server = new RpcServer(connection.asConnection(), options, {
    topic: 'volume',
    host: 'h1',
    endpoints: [endpoint],
    ...extra,
  });
  await server.start();
  return { server, channel: connection.channels[0]!, runs };
}

let sequence = 0;
function request(fields: Record<string, unknown>): Buffer {
  return encodeEnvelope({ _unique_id: `u${++sequence}`, ...contextFields(adminContext()), ...fields });
}
const callRequest = (fields: Record<string, unknown>) =>
  request({ _msg_id: `m${sequence}`, _reply_q: 'reply_q', ...fields });

/** Polls (no fixed sleep) until the channel has acknowledged `count` messages. */
async function acked(channel: FakeChannel, count: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (channel.acked.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${channel.acked.length} of ${count} messages acked`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const replies = (channel: FakeChannel) =>
  channel.published.filter((p) => p.routingKey === 'reply_q').map((p) => decodeEnvelope(p.content));
const deadLetters = (channel: FakeChannel) =>
  channel.sent
    .filter((s) => s.queue === 'dlq')
    .map((s) => String((s.options.headers as Record<string, unknown>)['x-basalt-reason']));

describe('RpcServer', () => {
  test('consumes <topic>, <topic>.<host> and its fanout queue', async () => {
    const { server, channel } = await serving();
    expect([...channel.consumers.keys()]).toEqual(server.queues);
    expect(server.queues.slice(0, 2)).toEqual(['volume', 'volume.h1']);
    expect(server.queues[2]).toMatch(/^volume_fanout_[0-9a-f]{32}$/);
  });

  test('a call is answered with its result, and acknowledged only after the reply is sent', async () => {
    const { channel, runs } = await serving();
    channel.deliver(
      'volume.h1',
      callRequest({ method: 'extend', version: '1.1', args: { volume_id: 'v1', new_size: 2 } }),
    );
    await acked(channel, 1);
    expect(runs).toEqual([{ volume_id: 'v1', new_size: 2 }]);
    expect(replies(channel)).toEqual([
      expect.objectContaining({ result: 2, failure: null, ending: true, _msg_id: expect.any(String) }),
    ]);
    expect(channel.events).toEqual(['publish reply_q', 'ack']);
  });

  test("a handler's error is the call's failure document and the message is acknowledged, not dead-lettered", async () => {
    const { channel } = await serving();
    channel.deliver(
      'volume',
      callRequest({ method: 'extend', version: '1.0', args: { volume_id: 'v1', new_size: -1 } }),
    );
    await acked(channel, 1);
    const [reply] = replies(channel);
    expect(JSON.parse(reply!.failure as string)).toMatchObject({
      class: 'ConflictError',
      module: 'basalt',
      message: 'volume v1 is attaching',
    });
    expect(deadLetters(channel)).toEqual([]);
  });

  test('a version the endpoint does not serve is refused with UnsupportedVersion and dead-lettered', async () => {
    const { channel, runs } = await serving();
    channel.deliver(
      'volume',
      callRequest({ method: 'extend', version: '1.2', args: { volume_id: 'v1', new_size: 2 } }),
    );
    channel.deliver(
      'volume',
      callRequest({ method: 'extend', version: '2.0', args: { volume_id: 'v1', new_size: 2 } }),
    );
    await acked(channel, 2);
    expect(replies(channel).map((r) => JSON.parse(r.failure as string).class)).toEqual([
      'UnsupportedVersion',
      'UnsupportedVersion',
    ]);
    expect(deadLetters(channel)).toEqual([
      'Endpoint does not support RPC version 1.2. Attempted method: extend',
      'Endpoint does not support RPC version 2.0. Attempted method: extend',
    ]);
    expect(runs).toEqual([]);
  });

  test('an unknown method, a malformed message and bad arguments are dead-lettered with the reason', async () => {
    const { channel, runs } = await serving();
    channel.deliver('volume', callRequest({ method: 'resize', args: {} }));
    channel.deliver('volume', Buffer.from('{not json'));
    channel.deliver('volume', request({ method: 'create', args: { volume_id: 7 } }));
    await acked(channel, 3);
    // handled concurrently: in any order
    expect(deadLetters(channel).sort()).toEqual([
      'Endpoint does not support RPC method resize',
      'body is not JSON',
      'volume.create: argument volume_id must be a non-empty string',
    ]);
    expect(JSON.parse(replies(channel)[0]!.failure as string).class).toBe('NoSuchMethod');
    expect(runs).toEqual([]);
    // the dead letter keeps the message as it came, and where it came from
    const malformed = channel.sent.find((sent) => sent.content.toString() === '{not json');
    expect(malformed?.options.headers).toMatchObject({
      'x-basalt-queue': 'volume',
      'x-basalt-routing-key': 'volume',
    });
  });

  test('a repeated _unique_id is acknowledged and not handled again, even while the first is in flight', async () => {
    const { channel, runs } = await serving();
    const once = request({ method: 'create', args: { volume_id: 'v1' } });
    channel.deliver('volume.h1', once);
    channel.deliver('volume.h1', once);
    channel.deliver('volume', once);
    await acked(channel, 3);
    expect(runs).toEqual([{ volume_id: 'v1' }]);
  });

  test('server middlewares run in order, the first the outermost, before dispatch and argument checks', async () => {
    const order: string[] = [];
    const named =
      (name: string): Middleware =>
      (next) =>
      async (invocation) => {
        order.push(`${name} in ${invocation.method}`);
        try {
          return await next(invocation);
        } catch (error) {
          order.push(`${name} saw ${(error as Error).name}`);
          throw error;
        } finally {
          order.push(`${name} out`);
        }
      };
    const { channel } = await serving({ middlewares: [named('outer'), named('inner')] });
    channel.deliver('volume', request({ method: 'create', args: { volume_id: 'v1' } }));
    await acked(channel, 1);
    expect(order).toEqual(['outer in create', 'inner in create', 'inner out', 'outer out']);
    order.length = 0;
    channel.deliver('volume', request({ method: 'create', args: {} }));
    await acked(channel, 2);
    expect(order).toEqual([
      'outer in create',
      'inner in create',
      'inner saw RpcDispatchError',
      'inner out',
      'outer saw RpcDispatchError',
      'outer out',
    ]);
  });

  test('every server answers oslo_rpc_server_ping', async () => {
    const { channel } = await serving();
    channel.deliver('volume', callRequest({ method: 'oslo_rpc_server_ping', args: {} }));
    await acked(channel, 1);
    expect(replies(channel)[0]).toMatchObject({ result: 'pong', failure: null });
  });
});
