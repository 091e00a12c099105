/**
 * The one error hierarchy. Handlers, the domain and the storage backends throw these (a
 * backend translates its engine's failures into them); the error middleware turns them
 * into problem+json. Anything that is not an AppError becomes a bare 500 whose body
 * says nothing about the cause.
 */
export interface ProblemExtras {
  [member: string]: string | number | boolean;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extras: ProblemExtras = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

export class BadRequest extends AppError {
  constructor(detail: string, extras?: ProblemExtras) {
    super(400, 'bad-request', 'Bad Request', detail, extras);
  }
}

export class Unauthorized extends AppError {
  /** `reason` is for the security log only; the client sees one generic detail. */
  constructor(readonly reason: string) {
    super(401, 'unauthorized', 'Unauthorized', 'A valid bearer token is required.', {}, {
      'WWW-Authenticate': 'Bearer realm="session-vault"',
    });
  }
}

export class NotFound extends AppError {
  constructor(detail = 'No such resource.') {
    super(404, 'not-found', 'Not Found', detail);
  }
}

export class PreconditionFailed extends AppError {
  constructor(detail: string) {
    super(412, 'precondition-failed', 'Precondition Failed', detail);
  }
}

export class PayloadTooLarge extends AppError {
  constructor(detail: string, limit: string) {
    super(413, 'payload-too-large', 'Payload Too Large', detail, { limit });
  }
}

export class UnsupportedMediaType extends AppError {
  constructor(detail: string) {
    super(415, 'unsupported-media-type', 'Unsupported Media Type', detail);
  }
}

export class TooManyRequests extends AppError {
  constructor(detail: string, retryAfterSeconds: number, extras?: ProblemExtras) {
    super(429, 'too-many-requests', 'Too Many Requests', detail, extras, { 'Retry-After': String(retryAfterSeconds) });
  }
}

export class QuotaExceeded extends AppError {
  constructor(detail: string, limit: string) {
    super(507, 'quota-exceeded', 'Quota Exceeded', detail, { limit });
  }
}

export class InsufficientStorage extends AppError {
  constructor() {
    super(507, 'insufficient-storage', 'Insufficient Storage', 'The server has no room to store this; nothing was changed.');
  }
}

/**
 * The session's stored data cannot be read back (a cut document, a damaged log line, a
 * mangled file list). Only that session is affected, and it can still be deleted; the body
 * names no path and shows none of the content.
 */
export class SessionDamaged extends AppError {
  constructor() {
    super(
      500,
      'session-damaged',
      'Session Damaged',
      'This session\'s stored data is damaged and cannot be served; it can be deleted. Your other sessions are not affected.',
    );
  }
}

export class ServiceUnavailable extends AppError {
  /**
   * `retryAfterSeconds`, when the cause is one that passes (a store that cannot be reached
   * right now), becomes the Retry-After header, so a client waits instead of hammering.
   */
  constructor(detail: string, retryAfterSeconds?: number) {
    super(
      503,
      'service-unavailable',
      'Service Unavailable',
      detail,
      {},
      retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) },
    );
  }
}

/**
 * Storage holds something it never writes (a symbolic link where a directory belongs) or
 * refused in a way that is no fault of the request's. Answered as a bare 500 naming no path;
 * `what` (no content, no path) is for the security log only.
 */
export class StorageFault extends AppError {
  constructor(readonly what: string) {
    super(500, 'internal-error', 'Internal Server Error', 'The request could not be completed.');
  }
}

export class RangeNotSatisfiable extends AppError {
  constructor(size: number) {
    super(416, 'range-not-satisfiable', 'Range Not Satisfiable', `The file has ${size} bytes.`, {}, {
      'Content-Range': `bytes */${size}`,
    });
  }
}

/** The client went away mid-request; nothing is answered (there is nobody to answer). */
export class ClientClosedRequest extends AppError {
  constructor() {
    super(400, 'client-closed-request', 'Client Closed Request', 'The request body ended before it was complete.');
  }
}
