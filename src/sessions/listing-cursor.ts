/**
 * Opaque listing cursors, signed. A cursor names the last item of a page (its sort key);
 * the HMAC binds it to the user and the listing it came from, so a cursor this service did
 * not issue, or issued to someone else or for another listing, is refused with a 400
 * instead of being taken as a position.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BadRequest } from '../errors';
import { isValidObjectId } from './ids';

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const TAG_BYTES = 16;

/** Position in a listing: the sort time and id of the last item already returned. */
export interface ListPosition {
  at: string;
  id: string;
}

export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  encode(userId: string, listing: string, position: ListPosition): string {
    const payload = Buffer.from(JSON.stringify([position.at, position.id]), 'utf8');
    return `${payload.toString('base64url')}.${this.tag(userId, listing, payload).toString('base64url')}`;
  }

  decode(userId: string, listing: string, cursor: string): ListPosition {
    const [body, tag, ...rest] = cursor.split('.');
    if (body !== undefined && tag !== undefined && rest.length === 0) {
      const payload = Buffer.from(body, 'base64url');
      const given = Buffer.from(tag, 'base64url');
      const expected = this.tag(userId, listing, payload);
      if (given.length === expected.length && timingSafeEqual(given, expected)) {
        const parsed: unknown = JSON.parse(payload.toString('utf8'));
        if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && TIMESTAMP.test(parsed[0]) && isValidObjectId(parsed[1])) {
          return { at: parsed[0], id: parsed[1] };
        }
      }
    }
    throw new BadRequest('The cursor is not one this service issued.');
  }

  private tag(userId: string, listing: string, payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update(`${listing}\0${userId}\0`).update(payload).digest().subarray(0, TAG_BYTES);
  }
}
