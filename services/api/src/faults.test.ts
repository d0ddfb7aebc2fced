import { NotFoundError } from '@basalt/errors';
import { RpcConnectionError } from '@basalt/rpc';
import { faultFor } from './faults';

describe('faultFor', () => {
  test('passing trouble behind the API is a 503 the client may retry, not a 500', () => {
    for (const error of [
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new RpcConnectionError('the broker connection is down'),
    ]) {
      expect(faultFor(error)).toMatchObject({ status: 503, body: { serviceUnavailable: { code: 503 } } });
    }
  });

  test('a genuine fault is a 500; a missing volume a 404', () => {
    expect(faultFor(new TypeError('x is undefined')).status).toBe(500);
    expect(faultFor(Object.assign(new Error('syntax error'), { code: '42601' })).status).toBe(500);
    expect(faultFor(new NotFoundError('Volume v could not be found.'))).toEqual({
      status: 404,
      body: { itemNotFound: { code: 404, message: 'Volume v could not be found.' } },
    });
  });
});
