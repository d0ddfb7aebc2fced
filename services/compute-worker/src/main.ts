import { runService } from '@basalt/service';

void runService({
  binary: 'basalt-compute',
  topic: 'compute',
  build: () => ({ endpoints: [] }),
});
