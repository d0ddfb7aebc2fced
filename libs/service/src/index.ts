export * from './periodic';
export * from './reconcile-findings';
export * from './rpc-options';
export * from './run-service';
