import { Batcher } from './batcher';

/** A run function that records each batch and answers when the test says so. */
function recorder() {
  const batches: number[][] = [];
  const release: Array<() => void> = [];
  const run = (inputs: readonly number[]) => {
    batches.push([...inputs]);
    return new Promise<number[]>((resolve) => release.push(() => resolve(inputs.map((n) => n * 10))));
  };
  return { batches, release, run };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  test('alone, a request leaves at once; requests made while it is in flight go together next', async () => {
    const r = recorder();
    const batcher = new Batcher(r.run, { maxBatch: 64, maxInFlight: 1 });
    const first = batcher.submit(1);
    await turn();
    expect(r.batches).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => batcher.submit(n));
    await turn();
    expect(r.batches).toEqual([[1]]); // still waiting for the first
    r.release[0]?.();
    expect(await first).toBe(10);
    await turn();
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
    r.release[1]?.();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  test('batches are capped at maxBatch and at most maxInFlight run at once', async () => {
    const r = recorder();
    const batcher = new Batcher(r.run, { maxBatch: 2, maxInFlight: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => batcher.submit(n));
    await turn();
    expect(r.batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    r.release[0]?.();
    await turn();
    expect(r.batches).toEqual([[1, 2], [3, 4], [5]]);
    r.release[1]?.();
    r.release[2]?.();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
  });

  test('a failed batch fails each of its requests and the next batch still runs', async () => {
    let calls = 0;
    const batcher = new Batcher<number, number>(async (inputs) => {
      calls++;
      if (calls === 1) throw new Error('connection lost');
      return inputs.map((n) => n + 1);
    });
    const failed = [batcher.submit(1), batcher.submit(2)];
    await expect(failed[0]).rejects.toThrow('connection lost');
    await expect(failed[1]).rejects.toThrow('connection lost');
    expect(await batcher.submit(3)).toBe(4);
  });

  test('a run that answers the wrong number of results fails the batch instead of misassigning', async () => {
    const batcher = new Batcher<number, number>(async () => [1]);
    const both = [batcher.submit(1), batcher.submit(2)];
    await expect(both[0]).rejects.toThrow('a batch of 2 was answered with 1 results');
    await expect(both[1]).rejects.toThrow('a batch of 2 was answered with 1 results');
  });
});
