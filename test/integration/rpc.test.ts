import { InvalidInputError } from '@basalt/errors';
import {
  decodeEnvelope,
  encodeEnvelope,
  type Invocation,
  parseRequest,
  RemoteError,
  RpcConnectionError,
  type RpcEndpoint,
  RpcTimeoutError,
  RpcUndeliverableError,
  routingKey,
} from '@basalt/rpc';
import { BrokerFixture, testContext, testRpcOptions, uniqueName, waitFor } from '../support/rpc';

class VolumeBusy extends InvalidInputError {}

describe('RPC over the real broker', () => {
  const broker = new BrokerFixture();
  const options = testRpcOptions();
  const topic = uniqueName('topic');
  const seen: Array<{ method: string; args: Record<string, unknown>; on: string; invocation: Invocation }> =
    [];

  const endpoint = (on: string): RpcEndpoint => ({
    version: '1.2',
    methods: {
      echo: async (args, invocation) => {
        seen.push({ method: 'echo', args, on, invocation });
        return { echoed: args.value, on };
      },
      note: async (args, invocation) => {
        seen.push({ method: 'note', args, on, invocation });
        return null;
      },
      slow_note: async (args, invocation) => {
        await new Promise((r) => setTimeout(r, 100));
        seen.push({ method: 'note', args, on, invocation });
        return null;
      },
      slow: async (args) => {
        await new Promise((r) => setTimeout(r, Number(args.ms)));
        return 'late';
      },
      fail: async () => {
        throw new VolumeBusy('volume vol-1 is busy', { retryable: true, data: { volume_id: 'vol-1' } });
      },
    },
  });

  beforeAll(async () => {
    const a = await broker.transport(options);
    const b = await broker.transport(options);
    await a.serve({ topic, host: 'host-a', endpoints: [endpoint('host-a')] });
    await b.serve({ topic, host: 'host-b', endpoints: [endpoint('host-b')] });
    for (const q of [topic, `${topic}.host-a`, `${topic}.host-b`]) broker.queues.add(q);
  });
  afterAll(() => broker.cleanup());
  beforeEach(() => {
    seen.length = 0;
  });

  const client = async () => (await broker.transport(options)).client;

  test('call returns the result from the named server and carries the context', async () => {
    const rpc = await client();
    const ctx = testContext({ globalRequestId: 'req-00000000-0000-4000-8000-000000000001' });
    const result = await rpc.call(ctx, { topic, server: 'host-b', version: '1.1' }, 'echo', { value: 42 });
    expect(result).toEqual({ echoed: 42, on: 'host-b' });
    const handled = seen[0]!.invocation;
    expect(handled.context.requestId).toBe(ctx.requestId);
    expect(handled.context.globalRequestId).toBe(ctx.globalRequestId);
    expect(handled.context.projectId).toBe('p1');
    // the message is the request's next span: same trace, a new span id
    expect(handled.context.traceparent?.split('-')[1]).toBe(ctx.traceparent?.split('-')[1]);
    expect(handled.context.traceparent).not.toBe(ctx.traceparent);
    expect(handled.kind).toBe('call');
  });

  test('cast is handled once by one server of the topic', async () => {
    const rpc = await client();
    await rpc.cast(testContext(), { topic }, 'note', { n: 1 });
    await waitFor(() => seen.length === 1 || undefined, 'cast handled');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.invocation.kind).toBe('cast');
  });

  test('fanout cast reaches every server', async () => {
    const rpc = await client();
    await rpc.cast(testContext(), { topic, fanout: true }, 'note', { n: 2 });
    await waitFor(() => seen.length === 2 || undefined, 'fanout handled by both');
    expect(seen.map((s) => s.on).sort()).toEqual(['host-a', 'host-b']);
  });

  test('a remote error arrives typed, with its data and whether to retry', async () => {
    const rpc = await client();
    const error = await rpc.call(testContext(), { topic }, 'fail', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    const remote = error as RemoteError;
    expect(remote.remoteClass).toBe('VolumeBusy');
    expect(remote.message).toBe('volume vol-1 is busy');
    expect(remote.data).toEqual({ volume_id: 'vol-1' });
    expect(remote.retryable).toBe(true);
  });

  test('a call that gets no reply in time fails with a retryable timeout', async () => {
    const rpc = await client();
    const error = await rpc
      .call(testContext(), { topic }, 'slow', { ms: 1500 }, { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcTimeoutError);
    expect((error as RpcTimeoutError).retryable).toBe(true);
  });

  test('a newer minor version than implemented is refused and dead-lettered', async () => {
    const rpc = await client();
    const error = await rpc
      .call(testContext(), { topic, version: '1.3' }, 'echo', {})
      .catch((e: unknown) => e);
    expect((error as RemoteError).remoteClass).toBe('UnsupportedVersion');
    const other = await rpc
      .call(testContext(), { topic, version: '2.0' }, 'echo', {})
      .catch((e: unknown) => e);
    expect((other as RemoteError).remoteClass).toBe('UnsupportedVersion');
    await expectDeadLetters(2, (bodies) =>
      expect(bodies.every((b) => parseRequest(b).method === 'echo')).toBe(true),
    );
  });

  test('an unknown method fails the call with NoSuchMethod and is dead-lettered', async () => {
    const rpc = await client();
    const error = await rpc.call(testContext(), { topic }, 'no_such', {}).catch((e: unknown) => e);
    expect((error as RemoteError).remoteClass).toBe('NoSuchMethod');
    await expectDeadLetters(1);
  });

  test('a poison message goes to the dead-letter queue and the server keeps serving', async () => {
    await broker.withChannel(async (channel) => {
      channel.publish(options.exchange, topic, Buffer.from('{not json'), { contentType: 'application/json' });
      channel.publish(options.exchange, topic, encodeEnvelope({ args: {} }), {
        contentType: 'application/json',
      });
    });
    await expectDeadLetters(2);
    const rpc = await client();
    expect(await rpc.call(testContext(), { topic }, 'echo', { value: 'still here' })).toMatchObject({
      echoed: 'still here',
    });
  });

  test('a repeated _unique_id is handled once', async () => {
    const message = encodeEnvelope({
      method: 'note',
      args: { dup: true },
      version: '1.0',
      _unique_id: 'dup0000001',
    });
    await broker.withChannel(async (channel) => {
      for (let i = 0; i < 3; i++) channel.publish(options.exchange, `${topic}.host-a`, message);
    });
    const rpc = await client();
    await rpc.call(testContext(), { topic, server: 'host-a' }, 'echo', { value: 'barrier' });
    await new Promise((r) => setTimeout(r, 400));
    expect(seen.filter((s) => s.method === 'note')).toHaveLength(1);
  });

  test("a call carrying oslo's _timeout gets still-working replies until the result", async () => {
    const replies: Array<Record<string, unknown>> = [];
    await broker.withChannel(async (channel) => {
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.consume(queue, (m) => m && replies.push(decodeEnvelope(m.content)), { noAck: true });
      channel.publish(
        options.exchange,
        topic,
        encodeEnvelope({
          method: 'slow',
          args: { ms: 700 },
          version: '1.0',
          _unique_id: uniqueName('monitored'),
          _msg_id: 'monitored-call',
          _reply_q: queue,
          _timeout: 0.2,
        }),
      );
      await waitFor(() => replies.some((r) => r.ending === true) || undefined, 'the final reply', 5000);
    });
    const heartbeats = replies.filter((r) => r.ending === false);
    expect(heartbeats.length).toBeGreaterThanOrEqual(3);
    expect(
      heartbeats.every((r) => r.result === null && r.failure === null && r._msg_id === 'monitored-call'),
    ).toBe(true);
    expect(replies.at(-1)).toMatchObject({ result: 'late', ending: true, _msg_id: 'monitored-call' });
  });

  test('messages without a _unique_id are all handled (they cannot be told apart)', async () => {
    const message = encodeEnvelope({ method: 'note', args: { anonymous: true }, version: '1.0' });
    await broker.withChannel(async (channel) => {
      for (let i = 0; i < 2; i++) channel.publish(options.exchange, `${topic}.host-b`, message);
    });
    await waitFor(
      () => seen.filter((s) => s.args.anonymous).length === 2 || undefined,
      'both anonymous casts',
    );
  });

  test('a cast the broker refuses (nack) is retried a few times, then fails', async () => {
    const full = uniqueName('full');
    broker.queues.add(full);
    await broker.withChannel(async (channel) => {
      // a queue that rejects every publish: its confirms come back as nacks
      await channel.assertQueue(full, {
        durable: true,
        arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
      });
      await channel.bindQueue(full, options.exchange, full);
    });
    const rpc = await client();
    const error = await rpc.cast(testContext(), { topic: full }, 'note', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcConnectionError);
    expect((error as Error).message).toContain('the broker refused the message 3 times');
  });

  test('every server answers oslo_rpc_server_ping', async () => {
    const rpc = await client();
    expect(await rpc.call(testContext(), { topic, server: 'host-a' }, 'oslo_rpc_server_ping', {})).toBe(
      'pong',
    );
  });

  test('a call or cast to a topic nobody serves fails at once as undeliverable', async () => {
    const rpc = await client();
    const target = { topic: uniqueName('nobody') };
    await expect(rpc.call(testContext(), target, 'echo', {})).rejects.toBeInstanceOf(RpcUndeliverableError);
    await expect(rpc.cast(testContext(), target, 'echo', {})).rejects.toBeInstanceOf(RpcUndeliverableError);
    expect(routingKey({ topic: 't', server: 'h' })).toBe('t.h');
  });

  test('a server drains its handlers in flight before it stops', async () => {
    const transport = await broker.transport(options);
    const slowTopic = uniqueName('slow');
    broker.queues.add(slowTopic);
    broker.queues.add(`${slowTopic}.h`);
    let finished = false;
    const server = await transport.serve({
      topic: slowTopic,
      host: 'h',
      endpoints: [
        {
          version: '1.0',
          methods: {
            work: async () => {
              await new Promise((r) => setTimeout(r, 400));
              finished = true;
              return 'done';
            },
          },
        },
      ],
    });
    const rpc = await client();
    const reply = rpc.call(testContext(), { topic: slowTopic }, 'work', {});
    await new Promise((r) => setTimeout(r, 100));
    await server.stop(5000);
    expect(finished).toBe(true);
    await expect(reply).resolves.toBe('done');
  });

  async function expectDeadLetters(count: number, check?: (bodies: Buffer[]) => void): Promise<void> {
    const letters = await broker.deadLetters(options.deadLetterQueue, count);
    for (const { reason } of letters) expect(reason).toEqual(expect.any(String));
    check?.(letters.map((l) => l.body));
  }
});
