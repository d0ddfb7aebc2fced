import { runService } from '@basalt/service';

void runService({
  binary: 'basalt-api',
  topic: 'api',
  build: () => ({}),
});
