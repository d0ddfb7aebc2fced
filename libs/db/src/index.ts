export * from './data-source';
export * from './services';
export type { DataSource } from 'typeorm';
