import { runService } from '@basalt/service';

void runService({
  binary: 'basalt-scheduler',
  topic: 'scheduler',
  build: () => ({ endpoints: [] }),
});
