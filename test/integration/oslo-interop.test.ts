import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Invocation, RemoteError } from '@basalt/rpc';
import { BROKER_URL, BrokerFixture, testContext, testRpcOptions, uniqueName, waitFor } from '../support/rpc';

// Debian's python3-oslo.messaging lives in the system interpreter, not in whatever python3 is first on PATH.
const PYTHON = '/usr/bin/python3';
const INTEROP = join(__dirname, '..', 'interop');

describe('interoperability with the real oslo.messaging', () => {
  const broker = new BrokerFixture();
  const options = testRpcOptions();
  afterAll(() => broker.cleanup());

  const peerArgs = (topic: string, server: string) => [
    '--url',
    BROKER_URL,
    '--exchange',
    options.exchange,
    '--topic',
    topic,
    '--server',
    server,
  ];

  test('an oslo.messaging client calls, casts and fanout-casts to a Basalt server', async () => {
    const topic = uniqueName('interop');
    for (const q of [topic, `${topic}.host-a`]) broker.queues.add(q);
    const notes: Invocation[] = [];
    const transport = await broker.transport(options);
    await transport.serve({
      topic,
      host: 'host-a',
      endpoints: [
        {
          version: '1.0',
          methods: {
            echo: async (args, inv) => ({ echoed: args.value, request_id: inv.context.requestId }),
            fail: async () => {
              throw new RangeError('basalt says no');
            },
            note: async (_args, inv) => {
              notes.push(inv);
              return null;
            },
          },
        },
      ],
    });
    const { stdout } = await promisify(execFile)(
      PYTHON,
      [join(INTEROP, 'oslo_client.py'), ...peerArgs(topic, 'host-a')],
      {
        cwd: INTEROP,
        timeout: 60_000,
      },
    );
    const steps = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string })
        .map((s) => [s.step, s]),
    );
    expect(steps.echo).toEqual({
      step: 'echo',
      result: { echoed: 42, request_id: 'req-11111111-2222-4333-8444-555555555555' },
    });
    expect(steps.fail).toMatchObject({ raised: 'RemoteError', exc_type: 'RangeError' });
    expect(steps.fail.value).toContain('basalt says no');
    expect(steps.ping).toEqual({ step: 'ping', result: 'pong' });
    expect(steps.done).toBeDefined();
    await waitFor(() => notes.length === 2 || undefined, 'cast and fanout cast from python');
    expect(notes.map((n) => n.args.n).sort()).toEqual([1, 2]);
    expect(notes[0]!.context.projectId).toBe('p-python');
    expect(notes[0]!.context.isAdmin).toBe(false);
  }, 60_000);

  test('with quorum queues, a Basalt server and an oslo.messaging server share a topic without a declaration conflict', async () => {
    const quorum = { ...options, quorum: true };
    const topic = uniqueName('interop_quorum');
    for (const q of [topic, `${topic}.basalt-q`, `${topic}.py-q`]) broker.queues.add(q);
    const transport = await broker.transport(quorum);
    await transport.serve({
      topic,
      host: 'basalt-q',
      endpoints: [
        { version: '1.0', methods: { echo: async (args) => ({ echoed: args.value, by: 'basalt' }) } },
      ],
    });
    const { stdout: types } = await promisify(execFile)('rabbitmqctl', ['list_queues', '-q', 'name', 'type']);
    expect(types).toMatch(new RegExp(`^${topic}\\s+quorum$`, 'm'));
    const python = spawn(PYTHON, [join(INTEROP, 'oslo_server.py'), ...peerArgs(topic, 'py-q'), '--quorum'], {
      cwd: INTEROP,
    });
    try {
      let out = '';
      let err = '';
      python.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
      });
      python.stderr.setEncoding('utf8').on('data', (c: string) => {
        err += c;
      });
      await waitFor(
        () => out.includes('READY') || undefined,
        `python quorum server ready (stderr: ${err})`,
        30_000,
      );
      const client = transport.client;
      expect(
        await client.call(testContext(), { topic, server: 'py-q', version: '1.0' }, 'echo', { value: 1 }),
      ).toMatchObject({
        echoed: 1,
      });
      expect(await client.call(testContext(), { topic, server: 'basalt-q' }, 'echo', { value: 2 })).toEqual({
        echoed: 2,
        by: 'basalt',
      });
      expect(err).not.toContain('PRECONDITION_FAILED');
    } finally {
      python.stdin.end();
      python.kill();
    }
  }, 60_000);

  describe('a Basalt client calling an oslo.messaging server', () => {
    const topic = uniqueName('interop_py');
    let python: ChildProcessWithoutNullStreams;
    const lines: string[] = [];

    beforeAll(async () => {
      for (const q of [topic, `${topic}.py-host`]) broker.queues.add(q);
      python = spawn(PYTHON, [join(INTEROP, 'oslo_server.py'), ...peerArgs(topic, 'py-host')], {
        cwd: INTEROP,
      });
      python.stdout
        .setEncoding('utf8')
        .on('data', (chunk: string) => lines.push(...chunk.trim().split('\n')));
      let stderr = '';
      python.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      await waitFor(
        () => lines.includes('READY') || undefined,
        `python server ready (stderr: ${stderr})`,
        30_000,
      );
    }, 40_000);

    afterAll(() => {
      python.stdin.end();
      python.kill();
    });

    test('call returns the result and delivers the context', async () => {
      const client = (await broker.transport(options)).client;
      const ctx = testContext();
      const result = await client.call(ctx, { topic, server: 'py-host', version: '1.1' }, 'echo', {
        value: 'hi',
      });
      expect(result).toEqual({
        echoed: 'hi',
        request_id: ctx.requestId,
        project_id: 'p1',
        // the message's own span, in the caller's trace
        traceparent: expect.stringMatching(
          new RegExp(`^00-${ctx.traceparent?.split('-')[1]}-[0-9a-f]{16}-01$`),
        ),
      });
      expect((result as { traceparent: string }).traceparent).not.toBe(ctx.traceparent);
    });

    test('a Python exception arrives as a typed remote error', async () => {
      const client = (await broker.transport(options)).client;
      const error = await client.call(testContext(), { topic }, 'fail', {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).remoteClass).toBe('ValueError');
      expect((error as RemoteError).message).toContain('python says no');
    });

    test('cast and fanout cast reach the Python server', async () => {
      const client = (await broker.transport(options)).client;
      const ctx = testContext();
      await client.cast(ctx, { topic }, 'note', { n: 7 });
      await client.cast(ctx, { topic, fanout: true }, 'note', { n: 8 });
      const notes = await waitFor(() => {
        const got = lines
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { note: number; request_id: string });
        return got.length >= 2 ? got : undefined;
      }, 'python notes');
      expect(notes.map((n) => n.note).sort()).toEqual([7, 8]);
      expect(notes[0]!.request_id).toBe(ctx.requestId);
    });

    test('the Python server answers a call at a version it does not implement with UnsupportedVersion', async () => {
      const client = (await broker.transport(options)).client;
      const error = await client
        .call(testContext(), { topic, version: '1.5' }, 'echo', { value: 1 })
        .catch((e: unknown) => e);
      expect((error as RemoteError).remoteClass).toBe('UnsupportedVersion');
    });
  });
});
