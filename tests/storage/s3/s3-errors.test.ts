/**
 * Which of the object store's failures are "come back later" (503 with Retry-After) and which
 * pass through as they are, on the error shapes the SDK produces in a plain process. The S3
 * store's own tests see the same failures through jest's VM, where the SDK rewraps them.
 */
import { ServiceUnavailable } from '../../../src/errors';
import { NoAnswerError, isTimeout, isUnavailable, toDomainError } from '../../../src/storage/s3/s3-errors';

const sdkError = (name: string, httpStatusCode?: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode, attempts: 3 } });

describe('S3 failures as the domain sees them', () => {
  test.each([
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:9000'), { code: 'ECONNREFUSED' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a name that does not resolve', Object.assign(new Error('getaddrinfo ENOTFOUND s3.internal'), { code: 'ENOTFOUND' })],
    ['every address refusing', Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), {})],
    ['the SDK\'s timeout', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' })],
    ['no answer within the store\'s answer deadline', new NoAnswerError(10_000)],
    ['the answer deadline after the SDK\'s retry layer (attempts recorded)', Object.assign(new NoAnswerError(10_000), { $metadata: { attempts: 1 } })],
    ['a 500', sdkError('InternalError', 500)],
    ['a 503 SlowDown', sdkError('SlowDown', 503)],
    ['a network error rewrapped across realms', new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9')],
  ])('%s is ServiceUnavailable with Retry-After', (_what, error) => {
    expect(isUnavailable(error)).toBe(true);
    const translated = toDomainError(error) as ServiceUnavailable;
    expect(translated).toBeInstanceOf(ServiceUnavailable);
    expect(translated.headers['Retry-After']).toBe('5');
    expect(translated.detail).not.toMatch(/10\.0\.0\.7|s3\.internal|127\.0\.0\.1/);
  });

  test.each([
    ['access denied', sdkError('AccessDenied', 403)],
    ['a missing bucket', sdkError('NoSuchBucket', 404)],
    ['an operation the store lacks (501)', sdkError('NotImplemented', 501)],
    ['a bug of ours', new TypeError('x is not a function')],
    ['a wrapped value with no network code', new Error('AWS SDK error wrapper for [object Object]')],
  ])('%s passes through unchanged', (_what, error) => {
    expect(isUnavailable(error)).toBe(false);
    expect(toDomainError(error)).toBe(error);
  });

  test.each([
    ['the answer deadline', new NoAnswerError(10_000), true],
    ['the SDK\'s connection or socket timeout', Object.assign(new Error('x'), { name: 'TimeoutError' }), true],
    ['the SDK\'s timeout rewrapped across realms', new Error('AWS SDK error wrapper for TimeoutError: connection timed out'), true],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:9000'), { code: 'ECONNREFUSED' }), false],
    ['a 500', sdkError('InternalError', 500), false],
    ['a caller\'s abort', Object.assign(new Error('Request aborted'), { name: 'AbortError' }), false],
  ])('%s is a timeout: %s', (_what, error, expected) => {
    expect(isTimeout(error)).toBe(expected);
  });

  test('the answer deadline\'s error names the deadline and nothing of the endpoint, and is not one the SDK retries', () => {
    const error = new NoAnswerError(10_000);
    expect(error.message).toBe('the object store did not answer within 10000 ms');
    // The SDK retries TimeoutError (and anything with such a code or cause), never this.
    expect(error.name).not.toBe('TimeoutError');
    expect(error).not.toHaveProperty('code');
    expect(error.cause).toBeUndefined();
  });
});
