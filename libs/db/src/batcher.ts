import { type Context, currentContext, inBatch } from '@basalt/trace';

interface Waiting<I, O> {
  readonly input: I;
  /** Where the request was made: what the batch records for this input belongs to its trace. */
  readonly context: Context;
  readonly resolve: (output: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit. Requests made while a batch is in flight wait and go together in the next one, so
 * under a burst N callers share one round trip, and a request that finds nothing in flight leaves
 * within the same event-loop turn (no timer, no added latency when the system is quiet).
 * `run` answers each input at its index; a batch that fails fails every request in it.
 */
export class Batcher<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly options: { readonly maxBatch: number; readonly maxInFlight: number } = {
      maxBatch: 64,
      maxInFlight: 1,
    },
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ input, context: currentContext(), resolve, reject });
      // requests made in the same turn leave together
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      this.inFlight++;
      inBatch(
        batch.map((w) => w.context),
        () => this.run(batch.map((w) => w.input)),
      )
        .then((outputs) => {
          if (outputs.length !== batch.length)
            throw new Error(`a batch of ${batch.length} was answered with ${outputs.length} results`);
          for (const [i, w] of batch.entries()) w.resolve(outputs[i] as O);
        })
        .catch((error: unknown) => {
          for (const w of batch) w.reject(error);
        })
        .finally(() => {
          this.inFlight--;
          this.flush();
        });
    }
  }
}
