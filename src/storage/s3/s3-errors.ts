/**
 * The object store's failures as the domain sees them, decided in one place: an endpoint that
 * cannot be reached, times out or answers 5xx is a ServiceUnavailable with Retry-After (it
 * passes; the client should come back), anything else passes through unchanged (a bare 500).
 * A domain error made here never carries the SDK's message: a network error names the
 * endpoint, and nothing of the endpoint or the credentials may reach a client or a log line.
 */
import { ServiceUnavailable } from '../../errors';

/** Long enough for a restarted or throttling store to recover, short enough for a user to wait. */
export const RETRY_AFTER_SECONDS = 5;

/** Failures to reach the endpoint at all, as Node reports them. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

const NO_ANSWER = 'NoAnswerError';

/**
 * The store let an attempt wait longer than its answer deadline (S3BlobStore's
 * ANSWER_TIMEOUT_MS) without progress: no byte of the request's body taken, no answer. Named
 * apart from the SDK's own TimeoutError on purpose: the SDK retries that one, and it does not
 * retry this one (it is neither transient nor throttling to its retry strategy), so a store that
 * takes requests and never answers costs a caller one deadline, not one per attempt.
 */
export class NoAnswerError extends Error {
  constructor(timeoutMs: number) {
    // Names no endpoint: the message may reach a log line.
    super(`the object store did not answer within ${timeoutMs} ms`);
    this.name = NO_ANSWER;
  }
}

/**
 * The SDK's retry layer replaces a thrown value that is not an Error of its own realm (Node's
 * network errors as seen from a test VM; aws/aws-sdk-js-v3#4273) with a new Error of this
 * text plus the value's own text, dropping its code. The code survives in that text.
 */
const SDK_WRAPPER = 'AWS SDK error wrapper for ';

interface SdkishError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** The SDK's HTTP status of a service error; undefined for a network error. */
export function httpStatusOf(error: unknown): number | undefined {
  const status = (error as SdkishError | null | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as SdkishError;
  if (isTimeout(error)) return true;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && e.message.startsWith(SDK_WRAPPER)) {
    return (e.message.match(/\bE[A-Z_]+\b/g) ?? []).some((code) => NETWORK_CODES.has(code));
  }
  // Node's connect tries every address of a name (IPv6 and IPv4) and reports them together.
  if (Array.isArray(e.errors) && e.errors.some(isUnavailable)) return true;
  const status = httpStatusOf(error);
  // 501 is a store that lacks the operation: that will not pass by waiting.
  return status !== undefined && status >= 500 && status !== 501;
}

/**
 * A request that got no answer in time: this store's answer deadline, or the SDK's own
 * connection and socket timeouts. Unlike a refusal or a 5xx, such a failure took its full
 * timeout to come, and whatever is asked of the store next would most likely wait as long.
 */
export function isTimeout(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as SdkishError;
  // TimeoutError is the SDK's name for its connection, socket and request timeouts.
  if (e.name === NO_ANSWER || e.name === 'TimeoutError') return true;
  return typeof e.message === 'string' && e.message.startsWith(SDK_WRAPPER) && /\bTimeoutError\b/.test(e.message);
}

export function toDomainError(error: unknown): unknown {
  if (isUnavailable(error)) {
    return new ServiceUnavailable('The file store cannot be reached right now; try again shortly.', RETRY_AFTER_SECONDS);
  }
  return error;
}

/** The rejection to hand a stream's consumer: always an Error object. */
export function toDomainStreamError(error: unknown): Error {
  const translated = toDomainError(error);
  return translated instanceof Error ? translated : new Error('the file store failed');
}
