/** Milliseconds spent in each named phase of one operation, for its log line. */
export class PhaseTimer {
  private last = performance.now();
  private readonly spent: Record<string, number> = {};

  /** Ends the current phase as `name` (`<name>_ms` in `fields()`). */
  lap(name: string): void {
    const now = performance.now();
    this.spent[`${name}_ms`] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }

  fields(): Readonly<Record<string, number>> {
    return { ...this.spent };
  }
}
