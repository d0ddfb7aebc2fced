import { runService } from '@basalt/service';

void runService({
  binary: 'basalt-volume',
  topic: 'volume',
  build: () => ({ endpoints: [] }),
});
