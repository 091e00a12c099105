/** Parses `If-Match` for the strong comparison RFC 9110 requires of it. */
import type { IfMatch } from '../sessions/session-store';

export function parseIfMatch(header: string | undefined): IfMatch | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  // Weak tags (W/"...") are kept as they are: they never equal a strong tag, so never match.
  return value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}
