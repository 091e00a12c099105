/**
 * Maps a refused token's reason (free text for the security log, which may name a claim or
 * carry a library's message) to one of a few classes, so the metric's label set is bounded.
 */
import type { AuthFailureClass } from './recorder';

const CLASSES: Array<[RegExp, AuthFailureClass]> = [
  [/^no bearer token$/, 'missing_token'],
  [/expired/, 'expired'],
  [/not yet valid|issued in the future/, 'not_yet_valid'],
  [/signing keys unavailable/, 'keys_unavailable'],
  [/unknown kid|no signing key|no kid/, 'unknown_key'],
  [/signature/, 'bad_signature'],
  [/algorithm/, 'bad_algorithm'],
  [/issuer/, 'wrong_issuer'],
  [/audience/, 'wrong_audience'],
  [/malformed|too long|invalid token|kid is not a string|jwt must be/, 'malformed'],
  [/claim|exp|iat|crit|payload/, 'bad_claims'],
];

export function authFailureClass(reason: string): AuthFailureClass {
  for (const [pattern, name] of CLASSES) if (pattern.test(reason)) return name;
  return 'other';
}
