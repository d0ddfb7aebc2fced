export * from './runner';
export * from './scripted-runner';
