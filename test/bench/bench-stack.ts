/** The settings the benchmarks' volume stacks share, on top of the test stack's own. */
export function benchStackEnv(traced: boolean): Record<string, string> {
  return {
    BASALT__QUOTA__VOLUMES: '-1',
    // 16 clients polling under one token: the benchmark measures the services, not the limiter
    BASALT__API__RATE_LIMIT: '0',
    // sparse files: promise up to 20x the disk, so 200 volumes fit on a small test disk
    BASALT__VOLUME__MAX_OVER_SUBSCRIPTION_RATIO: '20',
    // production intervals, not the tests' fast ones
    BASALT__DEFAULT__REPORT_INTERVAL: '10',
    BASALT__VOLUME__REPORT_CAPABILITIES_INTERVAL: '10',
    BASALT__TRACE__ENABLED: String(traced),
  };
}
