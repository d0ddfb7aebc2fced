import { BasaltError, ConflictError } from '@basalt/errors';
import { RemoteError, RpcDispatchError } from './errors';
import {
  decodeEnvelope,
  deserializeFailure,
  encodeEnvelope,
  isVersionCompatible,
  parseReply,
  parseRequest,
  serializeFailure,
} from './wire';

describe('oslo wire format', () => {
  test('an envelope holds the message as a JSON string under oslo.message', () => {
    const body = JSON.parse(encodeEnvelope({ method: 'm', args: { a: 1 } }).toString());
    expect(body['oslo.version']).toBe('2.0');
    expect(typeof body['oslo.message']).toBe('string');
    expect(JSON.parse(body['oslo.message'])).toEqual({ method: 'm', args: { a: 1 } });
  });

  test('bare (pre-envelope) messages are read too', () => {
    expect(decodeEnvelope(Buffer.from('{"method":"x","args":{}}'))).toEqual({ method: 'x', args: {} });
  });

  test.each([
    ['not json', '{oops'],
    ['not an object', '[1,2]'],
    ['wrong envelope version', '{"oslo.version":"3.0","oslo.message":"{}"}'],
    ['inner not a string', '{"oslo.version":"2.0","oslo.message":{}}'],
    ['inner not json', '{"oslo.version":"2.0","oslo.message":"{x"}'],
  ])('malformed body (%s) is a MalformedMessage', (_name, body) => {
    expect(() => decodeEnvelope(Buffer.from(body))).toThrow(RpcDispatchError);
  });

  test('a request needs a method and object args', () => {
    expect(() => parseRequest(encodeEnvelope({ args: {} }))).toThrow('request has no method');
    expect(() => parseRequest(encodeEnvelope({ method: 'm', args: [1] }))).toThrow('args is not an object');
    expect(parseRequest(encodeEnvelope({ method: 'm', _unique_id: 'u' })).args).toEqual({});
  });

  test('a reply without ending counts as final (pre-Newton peers)', () => {
    expect(parseReply(encodeEnvelope({ _msg_id: 'a', result: 3 }))).toMatchObject({
      result: 3,
      ending: true,
    });
    expect(parseReply(encodeEnvelope({ _msg_id: 'a', result: null, ending: false })).ending).toBe(false);
  });

  test('failures carry class, module, message, data and retryable both ways', () => {
    class VolumeNotFound extends BasaltError {}
    const doc = JSON.parse(serializeFailure(new VolumeNotFound('no volume v1', { data: { id: 'v1' } })));
    expect(doc).toMatchObject({ class: 'VolumeNotFound', module: 'basalt', message: 'no volume v1' });
    expect(doc.kwargs).toEqual({ id: 'v1', retryable: false });
    expect(Array.isArray(doc.tb)).toBe(true);
    const back = deserializeFailure(JSON.stringify(doc)) as RemoteError;
    expect(back).toBeInstanceOf(RemoteError);
    expect(back.remoteClass).toBe('VolumeNotFound');
    expect(back.data).toEqual({ id: 'v1' });
    expect(back.retryable).toBe(false);
    expect(deserializeFailure('not json').message).toBe('not json');
  });

  test('a registered class comes back as itself, with its data, retryability and the remote stack', () => {
    const raised = new ConflictError('volume v1 is attaching', { retryable: true, data: { id: 'v1' } });
    const back = deserializeFailure(serializeFailure(raised));
    expect(back).toBeInstanceOf(ConflictError);
    expect(back).toMatchObject({ message: 'volume v1 is attaching', data: { id: 'v1' }, retryable: true });
    expect(back.stack).toContain('(remote)');
    // the same name from a Python service is not ours
    const python = JSON.stringify({ class: 'ConflictError', module: 'nova.exception', message: 'm' });
    expect(deserializeFailure(python)).toBeInstanceOf(RemoteError);
  });

  test('dispatch errors use oslo class names', () => {
    const doc = JSON.parse(serializeFailure(new RpcDispatchError('NoSuchMethod', 'nope')));
    expect(doc.class).toBe('NoSuchMethod');
    expect(doc.module).toBe('oslo_messaging.rpc.dispatcher');
  });

  test.each([
    ['1.0', '1.0', true],
    ['1.3', '1.1', true],
    ['1.1', '1.3', false],
    ['2.0', '1.0', false],
    ['1.2.1', '1.2', true],
    ['1.2', '1.2.1', false],
  ])('implemented %s serves requested %s: %s', (implemented, requested, ok) => {
    expect(isVersionCompatible(implemented, requested)).toBe(ok);
  });
});
