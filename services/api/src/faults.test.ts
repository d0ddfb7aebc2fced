import '@basalt/db'; // the database package gives its driver's passing failures their kind
import {
  BasaltError,
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  QuotaExceededError,
  ServiceUnavailableError,
  UnauthorizedError,
  VersionNotAcceptableError,
} from '@basalt/errors';
import { RemoteError, RpcConnectionError } from '@basalt/rpc';
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

  test('a 503 says what is away in its own words, never the internal message', () => {
    expect(faultFor(new RpcConnectionError('call volume.host-a.create_volume: publish failed'))).toEqual({
      status: 503,
      body: {
        serviceUnavailable: {
          code: 503,
          message: 'The volume service is temporarily unavailable; retry the request.',
        },
      },
    });
    expect(
      faultFor(Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5432'), { code: 'ECONNREFUSED' })).body,
    ).toEqual({
      serviceUnavailable: {
        code: 503,
        message: 'The volume database is temporarily unavailable; retry the request.',
      },
    });
  });

  test('a genuine fault is a 500; a missing volume a 404', () => {
    expect(faultFor(new TypeError('x is undefined')).status).toBe(500);
    expect(faultFor(Object.assign(new Error('syntax error'), { code: '42601' })).status).toBe(500);
    expect(faultFor(new NotFoundError('Volume v could not be found.'))).toEqual({
      status: 404,
      body: { itemNotFound: { code: 404, message: 'Volume v could not be found.' } },
    });
  });

  test.each([
    [new InvalidInputError('bad size'), 400, 'badRequest'],
    [new InvalidStateError('Invalid volume: status must be available'), 400, 'badRequest'],
    [new UnauthorizedError('who are you'), 401, 'unauthorized'],
    [new ForbiddenError('not yours'), 403, 'forbidden'],
    [new VersionNotAcceptableError('volume 3.99'), 406, 'notAcceptable'],
    [new ConflictError('volume v is attaching'), 409, 'conflictingRequest'],
    [new ServiceUnavailableError('the backend is being upgraded'), 503, 'serviceUnavailable'],
  ])('%s is a %i %s carrying its own message', (error, status, name) => {
    expect(faultFor(error)).toEqual({ status, body: { [name]: { code: status, message: error.message } } });
  });

  test("over quota is Cinder's QuotaError: a 413 that says to retry after 0 seconds", () => {
    const error = new QuotaExceededError(
      'VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded',
    );
    expect(faultFor(error)).toEqual({
      status: 413,
      body: { overLimit: { code: 413, message: error.message, retryAfter: '0' } },
      retryAfter: '0',
    });
  });

  test('an error without a kind of its own, or a remote one nobody knows, is a 500 that tells nothing', () => {
    const remote = new RemoteError('ValueError', 'builtins', 'secret path /etc/x', {}, false, []);
    for (const error of [new BasaltError('tgtd said: target 7 exists'), remote]) {
      expect(faultFor(error)).toEqual({
        status: 500,
        body: {
          computeFault: {
            code: 500,
            message: 'The server has either erred or is incapable of performing the requested operation.',
          },
        },
      });
    }
  });
});
