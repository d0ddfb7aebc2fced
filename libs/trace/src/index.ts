export * from './metrics';
export * from './pg-exporter';
export * from './setup';
export * from './spans';
export * from './store';
