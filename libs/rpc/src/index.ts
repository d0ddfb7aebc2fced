export * from './client';
export * from './connection';
export * from './errors';
export * from './middleware';
export * from './options';
export * from './server';
export * from './transport';
export * from './wire';
