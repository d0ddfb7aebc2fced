/**
 * Preloaded (`node --require`) into each process of a `bench:trace-profile` stack: samples the
 * process's CPU with V8's profiler from its start and writes the profile to `BENCH_PROFILE_DIR`
 * when it exits (a Basalt process exits on SIGTERM once its work is done).
 */
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { basename, dirname, join } = require('node:path');

const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 100 });
session.post('Profiler.start');
process.on('exit', () => {
  // an in-process session answers at once, so the profile is written before the process ends
  session.post('Profiler.stop', (error, result) => {
    if (error) return;
    const service = basename(dirname(dirname(process.argv[1] ?? 'unknown')));
    writeFileSync(
      join(process.env.BENCH_PROFILE_DIR, `${service}.cpuprofile`),
      JSON.stringify(result.profile),
    );
  });
});
