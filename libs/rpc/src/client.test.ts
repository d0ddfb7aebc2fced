import { adminContext, parseTraceparent } from '@basalt/context';
import { ConflictError } from '@basalt/errors';
import { type ClientMiddleware, RpcClient } from './client';
import { RemoteError, RpcConnectionError, RpcTimeoutError, RpcUndeliverableError } from './errors';
import { FakeConnection, fakeRpcOptions } from './fake-amqp';
import { decodeEnvelope, encodeEnvelope, serializeFailure } from './wire';

const options = fakeRpcOptions;

async function started(middlewares: readonly ClientMiddleware[] = []) {
  const connection = new FakeConnection();
  const client = new RpcClient(connection.asConnection(), options, middlewares);
  await client.start();
  const [calls, casts] = connection.channels;
  return { connection, client, calls: calls!, casts: casts! };
}

const message = (content: Buffer) => decodeEnvelope(content);

describe('RpcClient', () => {
  test('a call goes to <topic>.<server> with its version, a reply address and the context, and resolves with the result', async () => {
    const { client, calls } = await started();
    const ctx = adminContext({ projectId: 'p1' });
    const reply = client.call(ctx, { topic: 'volume', server: 'h1', version: '1.2' }, 'echo', { v: 1 });
    const [sent] = calls.published;
    expect(sent).toMatchObject({ exchange: 'nova', routingKey: 'volume.h1' });
    expect(sent!.options).toMatchObject({ mandatory: true, deliveryMode: 1, expiration: '2000' });
    const body = message(sent!.content);
    expect(body).toMatchObject({
      method: 'echo',
      args: { v: 1 },
      version: '1.2',
      _reply_q: client.replyQueue,
      _context_request_id: ctx.requestId,
      _context_project_id: 'p1',
    });
    calls.deliver(
      client.replyQueue,
      encodeEnvelope({ _msg_id: body._msg_id, result: { ok: true }, failure: null, ending: true }),
    );
    await expect(reply).resolves.toEqual({ ok: true });
  });

  test("every message carries its own span, a child of the caller's, with the same request id", async () => {
    const { client, calls, casts } = await started();
    const ctx = adminContext();
    void client.call(ctx, { topic: 't' }, 'm', {}, { timeoutMs: 50 }).catch(() => undefined);
    await client.cast(ctx, { topic: 't' }, 'm', {});
    const parent = parseTraceparent(ctx.traceparent)!;
    const spans = [calls.published[0]!, casts.published[0]!].map((p) => {
      const body = message(p.content);
      expect(body._context_request_id).toBe(ctx.requestId);
      return parseTraceparent(body._context_traceparent as string)!;
    });
    for (const span of spans) {
      expect(span.traceId).toBe(parent.traceId);
      expect(span.spanId).not.toBe(parent.spanId);
    }
    expect(spans[0]!.spanId).not.toBe(spans[1]!.spanId);
  });

  test('client middlewares run in order, the first the outermost, around the child context', async () => {
    const order: string[] = [];
    const seen: string[] = [];
    const named =
      (name: string): ClientMiddleware =>
      (next) =>
      async (outgoing) => {
        order.push(`${name} in`);
        seen.push(outgoing.context.traceparent as string);
        try {
          return await next(outgoing);
        } finally {
          order.push(`${name} out`);
        }
      };
    const { client, casts } = await started([named('outer'), named('inner')]);
    const ctx = adminContext();
    await client.cast(ctx, { topic: 't' }, 'm', {});
    expect(order).toEqual(['outer in', 'inner in', 'inner out', 'outer out']);
    // both see the message's own context, the one that is sent
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]).not.toBe(ctx.traceparent);
    expect(message(casts.published[0]!.content)._context_traceparent).toBe(seen[0]);
  });

  test('a failure reply rejects with the registered class, or a RemoteError for an unknown one', async () => {
    const { client, calls } = await started();
    const answer = (failure: string) => {
      const reply = client.call(adminContext(), { topic: 't' }, 'm', {});
      const body = message(calls.published.at(-1)!.content);
      calls.deliver(client.replyQueue, encodeEnvelope({ _msg_id: body._msg_id, result: null, failure }));
      return reply.catch((error: unknown) => error);
    };
    expect(await answer(serializeFailure(new ConflictError('busy')))).toBeInstanceOf(ConflictError);
    const unknown = await answer(JSON.stringify({ class: 'ValueError', module: 'builtins', message: 'no' }));
    expect(unknown).toBeInstanceOf(RemoteError);
    expect(unknown).toMatchObject({ remoteClass: 'ValueError', message: 'no', retryable: false });
  });

  test('still-working replies keep a call alive past its timeout; silence ends it as a retryable timeout', async () => {
    const { client, calls } = await started();
    const sentAt = Date.now();
    const reply = client.call(adminContext(), { topic: 't' }, 'slow', {}, { timeoutMs: 300 });
    const msgId = message(calls.published[0]!.content)._msg_id;
    const heartbeat = encodeEnvelope({ _msg_id: msgId, result: null, failure: null, ending: false });
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      calls.deliver(client.replyQueue, heartbeat);
    }
    calls.deliver(client.replyQueue, encodeEnvelope({ _msg_id: msgId, result: 'done', ending: true }));
    await expect(reply).resolves.toBe('done');
    expect(Date.now() - sentAt).toBeGreaterThan(300);

    const silent = await client
      .call(adminContext(), { topic: 't' }, 'slow', {}, { timeoutMs: 30 })
      .catch((e: unknown) => e);
    expect(silent).toBeInstanceOf(RpcTimeoutError);
    expect((silent as RpcTimeoutError).retryable).toBe(true);
  });

  test('a call or a cast the broker returns as unroutable fails as undeliverable', async () => {
    const { client, calls, casts } = await started();
    const reply = client.call(adminContext(), { topic: 'nobody' }, 'm', {});
    calls.returnMessage(calls.published[0]!);
    await expect(reply).rejects.toBeInstanceOf(RpcUndeliverableError);
    // the broker returns the message before it confirms it
    casts.confirm = (published) => {
      casts.returnMessage(published);
      return undefined;
    };
    await expect(client.cast(adminContext(), { topic: 'nobody' }, 'm', {})).rejects.toBeInstanceOf(
      RpcUndeliverableError,
    );
  });

  test('a fanout cast is not mandatory and goes to <topic>_fanout; a fanout call is refused', async () => {
    const { client, casts } = await started();
    await client.cast(adminContext(), { topic: 'scheduler', fanout: true }, 'update', {});
    expect(casts.published[0]).toMatchObject({ exchange: 'scheduler_fanout', routingKey: '' });
    expect(casts.published[0]!.options.mandatory).toBe(false);
    await expect(
      client.call(adminContext(), { topic: 'scheduler', fanout: true }, 'update', {}),
    ).rejects.toBeInstanceOf(TypeError);
  });

  test('a cast nacked three times fails; one nacked fewer times is published again and succeeds', async () => {
    const { client, casts } = await started();
    let nacks = 2;
    casts.confirm = () => (nacks-- > 0 ? new Error('nack') : undefined);
    await client.cast(adminContext(), { topic: 't' }, 'm', {});
    expect(casts.published).toHaveLength(3);
    casts.confirm = () => new Error('nack');
    const error = await client.cast(adminContext(), { topic: 't' }, 'm', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcConnectionError);
    expect((error as Error).message).toContain('refused the message 3 times');
  });

  test('a cast made while the broker is away waits and goes out once it is back; calls in flight fail at once', async () => {
    const { connection, client, calls } = await started();
    const inFlight = client.call(adminContext(), { topic: 't' }, 'm', {});
    connection.lose(new Error('connection reset'));
    const lost = await inFlight.catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(RpcConnectionError);
    expect((lost as RpcConnectionError).retryable).toBe(true);
    expect(calls.published).toHaveLength(1);

    let done = false;
    const held = client.cast(adminContext(), { topic: 't' }, 'later', {}).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    await connection.restore();
    await held;
    const casts = connection.channels[3]!;
    expect(message(casts.published[0]!.content).method).toBe('later');
  });

  test('without a broker a call fails at once and a cast waits, until stop fails it', async () => {
    const connection = new FakeConnection(false);
    const client = new RpcClient(connection.asConnection(), options);
    await client.start();
    await expect(client.call(adminContext(), { topic: 't' }, 'm', {})).rejects.toBeInstanceOf(
      RpcConnectionError,
    );
    const cast = client.cast(adminContext(), { topic: 't' }, 'm', {}).catch((e: unknown) => e);
    client.stop();
    expect(await cast).toMatchObject({ message: 'cast t.m: client stopped before the broker took it' });
  });
});
