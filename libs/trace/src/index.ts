export * from './batch';
export * from './metrics';
export * from './pg-exporter';
export * from './recorder';
export * from './setup';
export * from './spans';
export * from './store';
