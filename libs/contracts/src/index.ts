export * from './compute-rpcapi';
export * from './scheduler-rpcapi';
export * from './volume-rpcapi';
