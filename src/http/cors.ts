/**
 * CORS for single-page applications served from another origin: only the exact origins in
 * CORS_ORIGINS are answered, credentials are never allowed (the token travels in the
 * Authorization header, not a cookie), and the headers a client needs to read are exposed.
 * With no origins configured, no CORS header is ever sent and browsers refuse cross-origin
 * reads: there is no middleware at all then (undefined).
 */
import cors from 'cors';
import type { RequestHandler } from 'express';

const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'If-Match', 'If-None-Match', 'If-Range', 'Range', 'X-Request-Id'];
const EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'Content-Disposition',
  'Content-Range',
  'RateLimit',
  'RateLimit-Policy',
  'Retry-After',
  'X-Request-Id',
];

export function corsPolicy(origins: string[]): RequestHandler | undefined {
  if (origins.length === 0) return undefined;
  return cors({
    origin: origins.includes('*') ? '*' : origins,
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
