import { type Attributes, type Context, context, createContextKey, type Span } from '@opentelemetry/api';
import { startSpan } from './spans';

const MEMBERS_KEY = createContextKey('basalt.batch.members');

/** The context a request is being handled in, to be given to `inBatch` when it joins a batch. */
export function currentContext(): Context {
  return context.active();
}

/**
 * Runs one statement made for many requests (group commit) knowing, per input, the context its
 * request asked in: what the statement records per input (`startItemSpans`) goes into each
 * request's own trace rather than all into the first one's.
 */
export function inBatch<T>(members: readonly Context[], fn: () => Promise<T>): Promise<T> {
  return context.with(context.active().setValue(MEMBERS_KEY, members), fn);
}

/**
 * A span per item of a statement over `count` items: each the child of the context its item was
 * asked in when the statement runs for a batch of exactly those items, else of the active context.
 */
export function startItemSpans(
  name: string,
  count: number,
  attributes: (index: number) => Attributes,
): Span[] {
  const members = context.active().getValue(MEMBERS_KEY) as readonly Context[] | undefined;
  const aligned = members?.length === count ? members : undefined;
  return Array.from({ length: count }, (_, i) =>
    startSpan(name, { attributes: attributes(i), ...(aligned ? { parent: aligned[i] } : {}) }),
  );
}
