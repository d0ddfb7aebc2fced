import { ConflictError, NotFoundError, QuotaExceededError } from '@basalt/errors';
import {
  call,
  cast,
  contractEndpoint,
  defineContract,
  type Invocation,
  parseRequest,
  RemoteError,
  rpcApi,
  s,
} from '@basalt/rpc';
import { faultFor } from '../../services/api/src/faults';
import { BrokerFixture, testContext, testRpcOptions, uniqueName, waitFor } from '../support/rpc';

const echo = call({
  since: '1.0',
  to: 'server',
  args: s.object({ value: s.string() }),
  result: s.object({ echoed: s.string() }),
});
const note = cast({ since: '1.0', to: 'topic', args: s.object({ n: s.int() }) });

/** The same topic as declared by an older release (1.0) and by a newer one (1.1 adds `shout`). */
function declarations(topic: string) {
  const v1_0 = defineContract({ topic, history: ['1.0 - Initial version.'], methods: { echo, note } });
  const v1_1 = defineContract({
    topic,
    history: ['1.0 - Initial version.', '1.1 - Adds shout.'],
    methods: {
      echo,
      note,
      shout: call({ since: '1.1', to: 'server', args: s.object({ value: s.string() }), result: s.string() }),
    },
  });
  return { v1_0, v1_1 };
}

describe('RPC contracts over the real broker', () => {
  const broker = new BrokerFixture();
  const options = testRpcOptions();
  const older = declarations(uniqueName('older'));
  const newer = declarations(uniqueName('newer'));
  const handled: Invocation[] = [];

  const handlers = {
    echo: async ({ value }: { value: string }, invocation: Invocation) => {
      handled.push(invocation);
      return { echoed: value };
    },
    note: async (_args: { n: number }, invocation: Invocation) => {
      handled.push(invocation);
    },
  };

  beforeAll(async () => {
    const servers = await broker.transport(options);
    // a server of the older release and one of the newer, each on its own topic
    await servers.serve({
      topic: older.v1_0.topic,
      host: 'h',
      endpoints: [contractEndpoint(older.v1_0, handlers)],
    });
    await servers.serve({
      topic: newer.v1_1.topic,
      host: 'h',
      endpoints: [
        contractEndpoint(newer.v1_1, { ...handlers, shout: async ({ value }) => value.toUpperCase() }),
      ],
    });
    for (const topic of [older.v1_0.topic, newer.v1_1.topic]) broker.queues.add(topic).add(`${topic}.h`);
  });
  afterAll(() => broker.cleanup());
  beforeEach(() => {
    handled.length = 0;
  });

  const client = async () => (await broker.transport(options)).client;

  test('a caller of the older declaration works against the newer server, sending the version of each method', async () => {
    const api = rpcApi(newer.v1_0, await client());
    await expect(api.echo(testContext(), 'h', { value: 'hi' })).resolves.toEqual({ echoed: 'hi' });
    expect(handled[0]!.version).toBe('1.0');
  });

  test('a caller of the newer declaration still reaches the older server for what it has', async () => {
    const api = rpcApi(older.v1_1, await client());
    await expect(api.echo(testContext(), 'h', { value: 'hi' })).resolves.toEqual({ echoed: 'hi' });
    await api.note(testContext(), { n: 1 });
    await waitFor(() => handled.some((i) => i.method === 'note') || undefined, 'the note');
    expect(handled.map((i) => i.version)).toEqual(['1.0', '1.0']);
  });

  test('a method newer than the server is refused as oslo refuses it, and dead-lettered', async () => {
    const api = rpcApi(older.v1_1, await client());
    const error = await api.shout(testContext(), 'h', { value: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).remoteClass).toBe('UnsupportedVersion');
    expect((error as RemoteError).message).toBe(
      'Endpoint does not support RPC version 1.1. Attempted method: shout',
    );
    const [letter] = await broker.deadLetters(options.deadLetterQueue, 1);
    expect(parseRequest(letter!.body)).toMatchObject({ method: 'shout', version: '1.1' });
    expect(letter!.reason).toBe('Endpoint does not support RPC version 1.1. Attempted method: shout');
    // the newer server has it
    await expect(rpcApi(newer.v1_1, await client()).shout(testContext(), 'h', { value: 'hi' })).resolves.toBe(
      'HI',
    );
  });

  test('arguments not of the declared shape are refused with the reason and dead-lettered; the handler never runs', async () => {
    const rpc = await client();
    const target = { topic: newer.v1_1.topic, server: 'h', version: '1.0' };
    const error = await rpc.call(testContext(), target, 'echo', { value: 42 }).catch((e: unknown) => e);
    expect((error as RemoteError).remoteClass).toBe('InvalidArguments');
    const reason = `${newer.v1_1.topic}.echo: argument value must be a non-empty string`;
    expect((error as RemoteError).message).toBe(reason);
    await rpc.cast(testContext(), { topic: newer.v1_1.topic, version: '1.0' }, 'note', { n: 'one' });
    const letters = await broker.deadLetters(options.deadLetterQueue, 2);
    expect(letters.map((l) => l.reason)).toEqual([
      reason,
      `${newer.v1_1.topic}.note: argument n must be an integer`,
    ]);
    expect(handled).toHaveLength(0);
  });

  test('a domain error raised by a handler reaches the caller as its own class, and the API answers with its kind', async () => {
    const topic = uniqueName('failing');
    broker.queues.add(topic).add(`${topic}.h`);
    const contract = defineContract({
      topic,
      history: ['1.0 - Initial version.'],
      methods: {
        attach: call({ since: '1.0', to: 'topic', args: s.object({ why: s.string() }), result: s.none() }),
      },
    });
    const raised = {
      conflict: new ConflictError('Volume v1 is attaching to another instance.', {
        data: { volume_id: 'v1' },
      }),
      missing: new NotFoundError('Volume v2 could not be found.'),
      quota: new QuotaExceededError('VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded.'),
    };
    const worker = await broker.transport(options);
    await worker.serve({
      topic,
      host: 'h',
      endpoints: [
        contractEndpoint(contract, {
          attach: async ({ why }) => {
            throw raised[why as keyof typeof raised];
          },
        }),
      ],
    });
    const api = rpcApi(contract, await client());
    const failure = (why: string) => api.attach(testContext(), { why }).catch((e: unknown) => e);

    const conflict = await failure('conflict');
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ message: raised.conflict.message, data: { volume_id: 'v1' } });
    expect(faultFor(conflict)).toEqual({
      status: 409,
      body: { conflictingRequest: { code: 409, message: 'Volume v1 is attaching to another instance.' } },
    });
    expect(faultFor(await failure('missing'))).toMatchObject({ status: 404, body: { itemNotFound: {} } });
    expect(faultFor(await failure('quota'))).toMatchObject({ status: 413, body: { overLimit: {} } });
  });
});
