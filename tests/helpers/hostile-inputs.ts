/**
 * Hostile inputs that both kinds of test send: tests/http checks what a client gets back
 * on every backend, tests/storage/fs checks that the same input leaves the data directory
 * alone. One table each, and one list of the requests an id is sent in, so the two never
 * drift apart.
 */
import { randomUUID } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { SAMPLES } from './multipart';

/** Session ids that try to leave the user's storage, encoded every way a proxy might decode. */
export const ENCODED_TRAVERSAL_IDS = [
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%252e%252e%252f%252e%252e%252fetc',
  '..%5C..%5Cwindows',
  '..%255C..%255C',
  '%00',
  'abc%00def',
  `${randomUUID()}%00`,
  '..',
  '.',
  '%2e%2e',
  '%E0%A4%A',
];

/** A request naming session `id` on every session route, not yet sent (await them together). */
export function onEverySessionRoute(app: Express, auth: { Authorization: string }, id: string): request.Test[] {
  return [
    request(app).get(`/api/v1/sessions/${id}`).set(auth),
    request(app).patch(`/api/v1/sessions/${id}`).set(auth).send({ title: 'x' }),
    request(app).delete(`/api/v1/sessions/${id}`).set(auth),
    request(app).post(`/api/v1/sessions/${id}/messages`).set(auth).send({ role: 'user', content: 'x' }),
    request(app).get(`/api/v1/sessions/${id}/messages`).set(auth),
  ];
}

/** A refusal of hostile input: an error as problem+json that names nothing it was led towards. */
export function expectSafeFailure(res: request.Response): void {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.stringify(res.body)).not.toMatch(/outside|passwd|\/tmp|ELOOP|symbolic/);
}

/** User ids a token may claim that would name a path; every one is refused. */
export const PATH_LIKE_USER_IDS: Array<[string, string]> = [
  ['a slash', 'alice/../bob'],
  ['a backslash', 'alice\\bob'],
  ['dot-dot', '..'],
  ['dot', '.'],
  ['NUL', 'alice\u0000'],
  ['a newline', 'alice\nbob'],
  ['5,000 characters', 'a'.repeat(5000)],
  ['a leading slash', '/etc'],
];

/** Client file names (the `filename` parameter) and the name stored for each. */
export const CLIENT_FILE_NAMES: Array<[string, string]> = [
  ['../../x', 'x'],
  ['/etc/passwd', 'passwd'],
  ['..\\..\\windows\\system32\\evil.txt', 'evil.txt'],
  ['CON', '_CON'],
  ['con.txt', '_con.txt'],
  ['LPT1', '_LPT1'],
  ['..', 'file'],
  ['   ', 'file'],
  ['.hidden', 'hidden'],
  ['trailing. . ', 'trailing'],
  ['bidi\u202Egnp.exe', 'bidignp.exe'],
  ['résumé 数据.txt', 'résumé 数据.txt'],
];

/** Extended names (`filename*`, percent-encoded) and the name stored for each. */
export const CLIENT_EXTENDED_FILE_NAMES: Array<[string, string]> = [
  ['a%00b.txt', 'ab.txt'],
  ['%00', 'file'],
  ['..%2F..%2Fx', 'x'],
  ['tab%09and%1Bescape', 'tabandescape'],
];

/**
 * Parts refused with a 415 for what their bytes are: the declared type (undefined: none
 * declared), the bytes, and what the refusal must say.
 */
export const REFUSED_BY_CONTENT: Array<[string, string | undefined, Buffer, RegExp]> = [
  ['an ELF declared as image/png', 'image/png', SAMPLES.elf, /ELF executable/],
  ['a PE declared as application/pdf', 'application/pdf', SAMPLES.pe, /Windows executable/],
  ['a Mach-O declared as image/gif', 'image/gif', SAMPLES.machO, /Mach-O executable/],
  ['a shebang script declared as text/plain', 'text/plain', SAMPLES.shebang, /shebang/],
  ['an ELF declared as application/json', 'application/json', SAMPLES.elf, /ELF executable/],
  ['text declared as image/png', 'image/png', Buffer.from('not a png at all'), /image\/png signature/],
  ['a PNG declared as image/jpeg', 'image/jpeg', SAMPLES.png, /image\/jpeg signature/],
  ['binary declared as text/csv', 'text/csv', Buffer.from([0x61, 0x00, 0x62]), /binary/],
  ['a type not allowed', 'application/x-msdownload', Buffer.from('hello'), /not an accepted type/],
  ['text/html (not allowed by default)', 'text/html', Buffer.from('<script>alert(1)</script>'), /not an accepted type/],
  // RFC 7578: a part without a Content-Type is text/plain, so binary bytes are refused.
  ['binary with no declared type', undefined, Buffer.from([0x89, 0x00, 0x01]), /binary, not text\/plain/],
  ['an ELF with no declared type', undefined, SAMPLES.elf, /ELF executable/],
];
