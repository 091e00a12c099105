// The part of s3rver 3.7 the tests use (the package ships no types).
declare module 's3rver' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    /** A request listener for a server of the caller's own. */
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
  }

  export = S3rver;
}
