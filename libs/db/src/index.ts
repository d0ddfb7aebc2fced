export type { DataSource } from 'typeorm';
export * from './data-source';
export * from './services';
