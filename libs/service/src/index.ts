export * from './periodic';
export * from './rpc-options';
export * from './run-service';
