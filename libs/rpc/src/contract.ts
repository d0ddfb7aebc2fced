import type { RequestContext } from '@basalt/context';
import type { CallOptions, RpcClient, Target } from './client';
import { RpcDispatchError, RpcError } from './errors';
import { type Schema, SchemaError } from './schema';
import type { EndpointMethod, Invocation, RpcEndpoint } from './server';
import { isVersionCompatible } from './wire';

/** Where a method's messages go: any server of the topic, one named server, or every server. */
export type Route = 'topic' | 'server' | 'fanout';

/** One method of a topic: how it is sent, what it takes and answers, the version that added it. */
export interface MethodSpec<A, R, K extends 'call' | 'cast' = 'call' | 'cast', To extends Route = Route> {
  readonly kind: K;
  readonly to: To;
  /** The topic version that added the method (or last changed its arguments); callers send it. */
  readonly since: string;
  readonly args: Schema<A>;
  readonly result: Schema<R>;
}

type AnyMethod = MethodSpec<unknown, unknown>;
type Methods = Readonly<Record<string, AnyMethod>>;

/** A method whose caller waits for the result. */
export function call<A, R, To extends 'topic' | 'server'>(spec: {
  readonly since: string;
  readonly to: To;
  readonly args: Schema<A>;
  readonly result: Schema<R>;
}): MethodSpec<A, R, 'call', To> {
  return { kind: 'call', ...spec };
}

/** A method whose caller only waits for the broker to take the message. */
export function cast<A, To extends Route>(spec: {
  readonly since: string;
  readonly to: To;
  readonly args: Schema<A>;
}): MethodSpec<A, void, 'cast', To> {
  return { kind: 'cast', result: { parse: () => undefined }, ...spec };
}

/** The one declaration of a topic's methods, from which both the client and the server are made. */
export interface Contract<M extends Methods = Methods> {
  readonly topic: string;
  /** The topic's current version: the last entry of `history`, what servers advertise. */
  readonly version: string;
  /** `'<major>.<minor> - what changed'`, oldest first, as the docstring of a Cinder rpcapi.py. */
  readonly history: readonly string[];
  readonly methods: M;
}

const HISTORY_ENTRY = /^(\d+\.\d+) - \S/;

/** Checks the declaration once, at load: a malformed history or a method newer than the topic is a bug. */
export function defineContract<M extends Methods>(definition: {
  readonly topic: string;
  readonly history: readonly string[];
  readonly methods: M;
}): Contract<M> {
  const versions = definition.history.map((entry) => {
    const version = HISTORY_ENTRY.exec(entry)?.[1];
    if (!version)
      throw new TypeError(`${definition.topic}: history entry "${entry}" is not "<x.y> - <change>"`);
    return version;
  });
  const version = versions.at(-1);
  if (!version) throw new TypeError(`${definition.topic}: the history is empty`);
  for (const [name, spec] of Object.entries(definition.methods)) {
    if (!versions.includes(spec.since) || !isVersionCompatible(version, spec.since)) {
      throw new TypeError(`${definition.topic}.${name}: since ${spec.since} is not a version of the history`);
    }
  }
  return { ...definition, version };
}

type ArgsOf<S> = S extends MethodSpec<infer A, unknown> ? A : never;
type ResultOf<S> = S extends MethodSpec<unknown, infer R> ? R : never;
type StubParams<S> =
  S extends MethodSpec<unknown, unknown, 'call' | 'cast', 'server'>
    ? [ctx: RequestContext, server: string, args: ArgsOf<S>, options?: CallOptions]
    : [ctx: RequestContext, args: ArgsOf<S>, options?: CallOptions];

/** The client of a topic: one function per method, named as on the wire. */
export type RpcApi<C extends Contract> = {
  readonly [K in keyof C['methods']]: (
    ...params: StubParams<C['methods'][K]>
  ) => Promise<ResultOf<C['methods'][K]>>;
};

/** What a server implements of a topic: one handler per method, given checked arguments. */
export type ContractHandlers<C extends Contract> = {
  readonly [K in keyof C['methods']]: (
    args: ArgsOf<C['methods'][K]>,
    invocation: Invocation,
  ) => Promise<ResultOf<C['methods'][K]>>;
};

/**
 * The client of `contract`: each method sends the version that added it (so an older server
 * takes every method it has), routed as declared; a call's reply is checked against the result
 * schema.
 */
export function rpcApi<C extends Contract>(contract: C, client: Pick<RpcClient, 'call' | 'cast'>): RpcApi<C> {
  const api: Record<string, (...params: never[]) => Promise<unknown>> = {};
  for (const [method, spec] of Object.entries(contract.methods)) {
    const base: Target = {
      topic: contract.topic,
      version: spec.since,
      ...(spec.to === 'fanout' ? { fanout: true } : {}),
    };
    const send = (ctx: RequestContext, target: Target, args: unknown, options?: CallOptions) =>
      spec.kind === 'cast'
        ? client.cast(ctx, target, method, args as Record<string, unknown>, options)
        : client
            .call(ctx, target, method, args as Record<string, unknown>, options)
            .then((reply) => checkedResult(contract, method, spec, reply));
    api[method] =
      spec.to === 'server'
        ? (ctx: RequestContext, server: string, args: unknown, options?: CallOptions) =>
            send(ctx, { ...base, server }, args, options)
        : (ctx: RequestContext, args: unknown, options?: CallOptions) => send(ctx, base, args, options);
  }
  return api as unknown as RpcApi<C>;
}

/**
 * The server side of `contract`: an endpoint at the topic's current version whose every method
 * checks its arguments against the declared schema before the handler runs. Arguments that do
 * not match are refused like an unknown method: the call fails and the message is dead-lettered.
 */
export function contractEndpoint<C extends Contract>(
  contract: C,
  handlers: ContractHandlers<C>,
): RpcEndpoint {
  const methods: Record<string, EndpointMethod> = {};
  for (const [method, spec] of Object.entries(contract.methods)) {
    const handler = handlers[method] as (args: unknown, invocation: Invocation) => Promise<unknown>;
    methods[method] = async (raw, invocation) => {
      let args: unknown;
      try {
        args = spec.args.parse(raw, '');
      } catch (error) {
        if (!(error instanceof SchemaError)) throw error;
        throw new RpcDispatchError(
          'InvalidArguments',
          `${contract.topic}.${method}: argument ${error.message}`,
        );
      }
      return (await handler(args, invocation)) ?? null;
    };
  }
  return { version: contract.version, methods };
}

function checkedResult(contract: Contract, method: string, spec: AnyMethod, reply: unknown): unknown {
  try {
    return spec.result.parse(reply, 'result');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new RpcError(`${contract.topic}.${method}: the server's reply does not match: ${error.message}`);
  }
}
