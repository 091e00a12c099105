/** What to tell a person about a failed request: one readable sentence per kind of answer. */
import { ApiError } from './api';

export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error instanceof Error ? error.message : String(error)}`;
  const detail = error.detail ? ` (${error.detail})` : '';
  if (error.type === '/problems/session-damaged') return 'This session is damaged and cannot be opened; it can only be deleted.';
  switch (error.status) {
    case 0:
      return 'Cannot reach the service, or it refused this page\'s origin (CORS).';
    case 401:
      return 'Your token is missing, invalid or expired. Mint or paste a new one.';
    case 404:
      return 'Not found: it does not exist, was deleted, or belongs to someone else.';
    case 409:
    case 412:
      return 'Someone changed this session since you opened it. It has been reloaded; make your change again.';
    case 413:
      return `Too large${detail}.`;
    case 415:
      return `This kind of file or body is not accepted${detail}.`;
    case 429:
      return `Too many requests. Try again in ${error.retryAfterSeconds ?? 'a few'} s.`;
    case 507:
      return `Your storage is full${detail}.`;
    default:
      return `The service answered ${error.status} ${error.title}${detail}.`;
  }
}
