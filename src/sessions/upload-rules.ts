/**
 * What an uploaded file may be and be called.
 *
 * - Its declared type must be allowed; for types with a signature (PDF, PNG, JPEG, GIF,
 *   WebP) the first bytes must carry it; text types must not hold NUL bytes; and an
 *   executable (ELF, PE, Mach-O, a script with a shebang) is refused whatever it claims.
 *   The table is small and fixed, so it lives here rather than in a general sniffing
 *   library (file-type is ESM-only and detects far more than this decision needs).
 * - The client's file name is metadata only: NFC-normalized, reduced to its last path
 *   component, stripped of control characters, invisible direction controls (U+202A-U+202E,
 *   U+2066-U+2069, U+061C, U+200E/U+200F and zero-width characters) and line/paragraph
 *   separators (U+2028/U+2029), bounded, never empty and never a Windows device name.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { UnsupportedMediaType } from '../errors';

const HEAD_BYTES = 4096;
const MAX_NAME_LENGTH = 200;
const FALLBACK_NAME = 'file';

const SIGNATURES: Record<string, (head: Buffer) => boolean> = {
  'application/pdf': (h) => h.subarray(0, 5).toString('latin1') === '%PDF-',
  'image/png': (h) => h.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  'image/jpeg': (h) => h.length >= 3 && h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff,
  'image/gif': (h) => ['GIF87a', 'GIF89a'].includes(h.subarray(0, 6).toString('latin1')),
  'image/webp': (h) => h.subarray(0, 4).toString('latin1') === 'RIFF' && h.subarray(8, 12).toString('latin1') === 'WEBP',
};

const MACH_O_MAGICS = ['feedface', 'feedfacf', 'cefaedfe', 'cffaedfe', 'cafebabe'];

function executableKind(head: Buffer): string | null {
  if (head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return 'an ELF executable';
  if (MACH_O_MAGICS.includes(head.subarray(0, 4).toString('hex'))) return 'a Mach-O executable';
  // A DOS/PE header: "MZ" and the zero bytes every such header has in its first 64 bytes.
  if (head.subarray(0, 2).toString('latin1') === 'MZ' && head.length >= 64 && head.subarray(2, 64).includes(0)) {
    return 'a Windows executable';
  }
  if (head.subarray(0, 2).toString('latin1') === '#!') return 'a script with a shebang';
  return null;
}

function isTextType(contentType: string): boolean {
  return contentType.startsWith('text/') || contentType === 'application/json' || contentType.endsWith('+json');
}

/** Why `head` (the first bytes) cannot be stored as `contentType`, or null when it can. */
export function contentProblem(contentType: string, head: Buffer): string | null {
  const executable = executableKind(head);
  if (executable) return `the content is ${executable}`;
  const signature = SIGNATURES[contentType];
  if (signature && !signature(head)) return `the content does not start with the ${contentType} signature`;
  if (isTextType(contentType) && head.includes(0)) return `the content is binary, not ${contentType}`;
  return null;
}

/** Passes bytes through once the first HEAD_BYTES (or the whole, if shorter) pass the check. */
export class ContentInspector extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  private decided = false;

  constructor(
    private readonly contentType: string,
    private readonly label: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.decided) {
      callback(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength < HEAD_BYTES) {
      callback();
      return;
    }
    this.decide(callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.decided) callback();
    else this.decide(callback);
  }

  private decide(callback: TransformCallback): void {
    const buffered = Buffer.concat(this.head);
    this.head = [];
    this.decided = true;
    const problem = contentProblem(this.contentType, buffered.subarray(0, HEAD_BYTES));
    if (problem) callback(new UnsupportedMediaType(`${this.label}: declared ${this.contentType}, but ${problem}.`));
    else callback(null, buffered);
  }
}

// Control characters; zero-width characters and the LRM/RLM marks (U+200B-U+200F); the Arabic
// letter mark (U+061C); line and paragraph separators (U+2028, U+2029); bidirectional
// embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069); the BOM. A name carrying
// them can display as another name (`invoice\u202Etxt.exe`) or break a header or log line.
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/gu;

const WINDOWS_DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;

export function sanitizeFileName(raw: string | undefined): string {
  const lastComponent = (raw ?? '').normalize('NFC').split(/[/\\]/).pop() ?? '';
  let name = lastComponent
    .replace(UNSAFE_CHARACTERS, '')
    .trim()
    .replace(/^\.+/, '')
    .replace(/[.\s]+$/, '');
  const characters = [...name];
  if (characters.length > MAX_NAME_LENGTH) {
    const dot = name.lastIndexOf('.');
    const extension = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
    name = characters.slice(0, MAX_NAME_LENGTH - [...extension].length).join('') + extension;
  }
  if (name.length === 0) return FALLBACK_NAME;
  // Saved as is, a device name like `CON.txt` cannot be written on Windows.
  return WINDOWS_DEVICE_NAME.test(name) ? `_${name}` : name;
}

export function normalizeContentType(declared: string | undefined): string {
  return (declared ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
}
