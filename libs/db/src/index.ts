export type { DataSource } from 'typeorm';
export * from './attachments';
export * from './batcher';
export * from './data-source';
export * from './services';
export * from './targets';
export * from './transient';
export * from './volumes';
