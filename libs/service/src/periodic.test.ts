import pino from 'pino';
import { startPeriodic } from './periodic';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startPeriodic', () => {
  test('a slow run is not overtaken, a failed one is logged and the next runs, stop waits for the run in progress', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    let running = 0;
    let most = 0;
    let runs = 0;
    let finished = 0;
    const task = startPeriodic(
      'test task',
      0.01,
      async () => {
        runs++;
        running++;
        most = Math.max(most, running);
        await sleep(35);
        running--;
        finished++;
        if (runs === 1) throw new Error('first run broke');
      },
      log,
    );
    // the evidence, not a guess at how long two runs take on a busy machine
    for (const deadline = Date.now() + 10_000; runs < 2 && Date.now() < deadline; ) await sleep(10);
    await task.stop();
    expect(most).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(finished).toBe(runs);
    expect(lines.some((l) => l.includes('test task failed') && l.includes('first run broke'))).toBe(true);
    const after = runs;
    await sleep(50);
    expect(runs).toBe(after);
  });
});
