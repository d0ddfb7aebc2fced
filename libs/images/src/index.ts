export * from './image-api';
export * from './image-store';
export * from './service-image-api';
