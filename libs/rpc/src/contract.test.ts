import { adminContext } from '@basalt/context';
import type { RpcClient, Target } from './client';
import { call, cast, defineContract, rpcApi } from './contract';
import { RpcError } from './errors';
import { SchemaError, s } from './schema';

const connector = s.object({ ip: s.string(), initiator: s.string(), host: s.optional(s.string()) });

const contract = defineContract({
  topic: 'volume',
  history: ['1.0 - Initial version.', '1.1 - Adds initialize_connection.'],
  methods: {
    create_volume: cast({ since: '1.0', to: 'server', args: s.object({ volume_id: s.string() }) }),
    publish: cast({ since: '1.0', to: 'fanout', args: s.object({}) }),
    initialize_connection: call({
      since: '1.1',
      to: 'server',
      args: s.object({ volume_id: s.string(), connector }),
      result: s.object({ target_lun: s.int() }),
    }),
  },
});

/** A client that records what it was asked to send and answers calls with `reply`. */
function recordingClient(reply: unknown) {
  const sent: Array<{ kind: string; target: Target; method: string; args: unknown }> = [];
  const client: Pick<RpcClient, 'call' | 'cast'> = {
    call: async (_ctx, target, method, args) => {
      sent.push({ kind: 'call', target, method, args });
      return reply;
    },
    cast: async (_ctx, target, method, args) => {
      sent.push({ kind: 'cast', target, method, args });
    },
  };
  return { client, sent };
}

describe('defineContract', () => {
  test("the topic's version is the last of its history", () => {
    expect(contract.version).toBe('1.1');
  });

  test('a malformed or empty history, or a method of a version not in it, is refused at load', () => {
    const method = cast({ since: '1.2', to: 'topic', args: s.object({}) });
    expect(() => defineContract({ topic: 't', history: [], methods: {} })).toThrow('the history is empty');
    expect(() => defineContract({ topic: 't', history: ['1.0 initial'], methods: {} })).toThrow(
      'history entry "1.0 initial" is not "<x.y> - <change>"',
    );
    expect(() => defineContract({ topic: 't', history: ['1.0 - Initial.'], methods: { m: method } })).toThrow(
      't.m: since 1.2 is not a version of the history',
    );
  });
});

describe('rpcApi', () => {
  test('each method goes where it is declared to, with the version that added it', async () => {
    const { client, sent } = recordingClient({ target_lun: 1 });
    const api = rpcApi(contract, client);
    const connection = { ip: '127.0.0.1', initiator: 'iqn.x' };
    await api.create_volume(adminContext(), 'h1', { volume_id: 'v1' });
    await api.publish(adminContext(), {});
    await expect(
      api.initialize_connection(adminContext(), 'h1', { volume_id: 'v1', connector: connection }),
    ).resolves.toEqual({ target_lun: 1 });
    expect(sent).toEqual([
      {
        kind: 'cast',
        target: { topic: 'volume', version: '1.0', server: 'h1' },
        method: 'create_volume',
        args: { volume_id: 'v1' },
      },
      {
        kind: 'cast',
        target: { topic: 'volume', version: '1.0', fanout: true },
        method: 'publish',
        args: {},
      },
      {
        kind: 'call',
        target: { topic: 'volume', version: '1.1', server: 'h1' },
        method: 'initialize_connection',
        args: { volume_id: 'v1', connector: connection },
      },
    ]);
  });

  test("a reply not of the declared result shape is the server's fault, not the caller's", async () => {
    const api = rpcApi(contract, recordingClient({ target_lun: 'one' }).client);
    const error = await api
      .initialize_connection(adminContext(), 'h1', {
        volume_id: 'v1',
        connector: { ip: 'a', initiator: 'b' },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).not.toBeInstanceOf(SchemaError);
    expect((error as Error).message).toBe(
      "volume.initialize_connection: the server's reply does not match: result.target_lun must be an integer",
    );
  });
});

describe('schemas', () => {
  test('objects keep their declared keys only; optional keys may be absent or null', () => {
    const args = s.object({ volume_id: s.string(), connector });
    expect(
      args.parse({ volume_id: 'v1', connector: { ip: 'a', initiator: 'b', extra: 1 }, newer: true }, ''),
    ).toEqual({ volume_id: 'v1', connector: { ip: 'a', initiator: 'b' } });
    expect(args.parse({ volume_id: 'v1', connector: { ip: 'a', initiator: 'b', host: null } }, '')).toEqual({
      volume_id: 'v1',
      connector: { ip: 'a', initiator: 'b' },
    });
  });

  test.each([
    [{ volume_id: '' }, 'volume_id must be a non-empty string'],
    [{ volume_id: 'v1', connector: 'iqn' }, 'connector must be an object'],
    [{ volume_id: 'v1', connector: { ip: 'a' } }, 'connector.initiator must be a non-empty string'],
    [
      { volume_id: 'v1', connector: { ip: 'a', initiator: 'b', host: 5 } },
      'connector.host must be a non-empty string',
    ],
  ])('%j is refused: %s', (value, message) => {
    const args = s.object({ volume_id: s.string(), connector });
    expect(() => args.parse(value, '')).toThrow(SchemaError);
    expect(() => args.parse(value, '')).toThrow(message);
  });

  test('integers, numbers, booleans and literals are told apart', () => {
    expect(() => s.int().parse(1.5, 'size')).toThrow('size must be an integer');
    expect(() => s.number().parse(Number.NaN, 'ratio')).toThrow('ratio must be a number');
    expect(() => s.boolean().parse('true', 'thin')).toThrow('thin must be a boolean');
    expect(() => s.literal('iSCSI').parse('FC', 'protocol')).toThrow('protocol must be "iSCSI"');
    expect(s.literal('iSCSI').parse('iSCSI', 'protocol')).toBe('iSCSI');
  });
});

describe('choice schemas in lists', () => {
  const report = s.object({ findings: s.array(s.object({ action: s.oneOf('remove', 'report') })) });

  test('a list of items of their shape, and one of the choices', () => {
    expect(report.parse({ findings: [{ action: 'remove' }, { action: 'report' }] }, '')).toEqual({
      findings: [{ action: 'remove' }, { action: 'report' }],
    });
    expect(report.parse({ findings: [] }, '')).toEqual({ findings: [] });
  });

  test('anything else names the path that is wrong and what it must be', () => {
    expect(() => report.parse({ findings: {} }, '')).toThrow(new SchemaError('findings', 'an array'));
    expect(() => report.parse({ findings: [{ action: 'keep' }] }, '')).toThrow(
      'findings[0].action must be "remove" or "report"',
    );
  });
});
