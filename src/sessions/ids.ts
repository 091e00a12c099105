/**
 * The id rules, in one place: what a user id may be (it comes from a token, so it is
 * untrusted) and what a session, message or file id is (server-generated, so anything else
 * is simply not one). Every layer that takes an id from outside asks these functions; no
 * backend, router or CLI keeps a rule of its own.
 */
import { randomUUID } from 'node:crypto';

export const USER_ID_MAX_LENGTH = 64;

/** Letters, digits and the punctuation common in IdP subjects (`auth0|123`, e-mail addresses). */
const USER_ID_PATTERN = /^[A-Za-z0-9._@|:+=-]+$/;
const UUID_V4_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The user-id rule: a strict character set, a length bound, never a run of dots only. */
export function isValidUserId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= USER_ID_MAX_LENGTH &&
    USER_ID_PATTERN.test(value) &&
    !/^\.+$/.test(value)
  );
}

/** Session, message and file ids are server-generated UUID v4 in lower case; nothing else is one. */
export function isValidObjectId(value: unknown): value is string {
  return typeof value === 'string' && UUID_V4_PATTERN.test(value);
}

export function newObjectId(): string {
  return randomUUID();
}
