export * from './compute-rpcapi';
export * from './reconcile';
export * from './scheduler-rpcapi';
export * from './volume-rpcapi';
