import type { SpanNode } from '@basalt/trace';

/** Every span of the trees, parents before their children. */
export const flatten = (spans: SpanNode[]): SpanNode[] => spans.flatMap((s) => [s, ...flatten(s.children)]);

/** Every span below `span`. */
export const descendants = (span: SpanNode): SpanNode[] => flatten(span.children);

/** Processes on one host anchor their monotonic clocks to the wall clock each at its own start, so their
 * span times agree to within about a millisecond: compared with this slack. */
const SLACK_MS = 2;

/** Every span begins within its parent; all but a cast's consumer (which may outlive the send) end within it too. */
export function expectNested(root: SpanNode): void {
  const outside: string[] = [];
  const visit = (parent: SpanNode) => {
    for (const c of parent.children) {
      const early = c.offset_ms < parent.offset_ms - SLACK_MS;
      const late =
        c.kind !== 'consumer' &&
        c.offset_ms + c.duration_ms > parent.offset_ms + parent.duration_ms + SLACK_MS;
      if (early || late)
        outside.push(
          `${c.name} [${c.offset_ms}+${c.duration_ms}] outside ${parent.name} [${parent.offset_ms}+${parent.duration_ms}]`,
        );
      visit(c);
    }
  };
  visit(root);
  expect(outside).toEqual([]);
}
