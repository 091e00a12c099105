/**
 * The security headers every response carries, as helmet decides them for this API.
 *
 * Helmet runs a chain of small middlewares on every request, each validating and setting one
 * header, though for a configuration without per-request values (no CSP nonce) they set the
 * same headers every time. So helmet runs once, at startup, against a response that records
 * what it sets and removes; each request then gets that list in one loop. Helmet stays the
 * authority on which headers and values are right.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/** What this API's responses carry. */
export const API_SECURITY_HEADERS: HelmetOptions = {
  // A JSON API renders nothing: no source of any kind is allowed, nor framing.
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  frameguard: { action: 'deny' },
  // HSTS belongs to the TLS-terminating proxy in front of this service.
  strictTransportSecurity: false,
  // Headers that only change how a browser treats an HTML document (opener windows,
  // agent clusters, DNS prefetch, IE8 downloads, Flash policies, the retired XSS
  // auditor) say nothing about JSON or attachments; every response would carry them
  // for nothing.
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

type HeaderChange = [name: string, value: string | undefined];

/** What `middleware` does to a response's headers, found by running it on a recorder. */
function headerChangesOf(middleware: ReturnType<typeof helmet>): HeaderChange[] {
  const changes: HeaderChange[] = [];
  // Whatever a directive function reads from the request or `res.locals` is a fresh value on
  // every run, so headers built from them differ between two runs.
  const unique = new Proxy({}, { get: () => randomUUID() });
  const recorder = {
    locals: unique,
    setHeader: (name: string, value: unknown) => changes.push([name, String(value)]),
    removeHeader: (name: string) => changes.push([name, undefined]),
  };
  let finished = false;
  middleware(unique as Parameters<typeof middleware>[0], recorder as unknown as Parameters<typeof middleware>[1], (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error(String(error));
    finished = true;
  });
  if (!finished) throw new Error('helmet did not finish synchronously');
  return changes;
}

/**
 * Helmet's headers for `options`, unless they depend on the request (a CSP nonce function):
 * those cannot be computed once, so it is refused at startup rather than sent stale.
 */
function fixedHeaderChanges(options: HelmetOptions): HeaderChange[] {
  // A directive given as a function is computed per request (a nonce): refused outright, as
  // two recordings could agree on a value the function would derive from the request later.
  const csp = options.contentSecurityPolicy;
  const directives = typeof csp === 'object' && csp !== null ? Object.values(csp.directives ?? {}) : [];
  if (directives.some((value) => typeof value === 'function' || (Array.isArray(value) && value.some((item) => typeof item === 'function')))) {
    throw new Error('security headers that depend on the request cannot be computed once (a Content-Security-Policy directive is a function)');
  }
  const middleware = helmet(options);
  let first: HeaderChange[];
  let second: HeaderChange[];
  try {
    first = headerChangesOf(middleware);
    second = headerChangesOf(middleware);
  } catch (error) {
    throw new Error(`security headers that depend on the request cannot be computed once (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  if (JSON.stringify(first) !== JSON.stringify(second)) throw new Error('security headers that depend on the request cannot be computed once');
  return first;
}

export function securityHeaders(options: HelmetOptions): RequestHandler {
  const changes = fixedHeaderChanges(options);
  return (_req, res, next) => {
    for (const [name, value] of changes) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
    next();
  };
}
