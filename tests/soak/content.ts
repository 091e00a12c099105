/**
 * Everything the workload stores, made so that it can be checked when read back without the
 * client keeping a copy: file bytes are slices of two fixed blocks (regenerated from kind,
 * offset and size), message contents carry their own check, states carry a tag.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';

const BLOCK = 1024 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PDF_HEAD = Buffer.from('%PDF-1.7\n');
const TEXT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789,.;\n';

const binary = randomBytes(BLOCK);
const text = Buffer.from(Array.from(randomBytes(BLOCK), (b) => TEXT_ALPHABET.charCodeAt(b % TEXT_ALPHABET.length)));

export const FILE_KINDS = {
  png: { contentType: 'image/png', extension: 'png', head: PNG_SIGNATURE, block: binary },
  pdf: { contentType: 'application/pdf', extension: 'pdf', head: PDF_HEAD, block: text },
  csv: { contentType: 'text/csv', extension: 'csv', head: Buffer.alloc(0), block: text },
  txt: { contentType: 'text/plain', extension: 'txt', head: Buffer.alloc(0), block: text },
  md: { contentType: 'text/markdown', extension: 'md', head: Buffer.alloc(0), block: text },
} as const;

export type FileKind = keyof typeof FILE_KINDS;

export interface FileSpec {
  kind: FileKind;
  offset: number;
  size: number;
}

/** Mostly 64 B - 16 KiB, one in twenty up to 256 KiB. */
export function randomFileSpec(): FileSpec {
  const kinds = Object.keys(FILE_KINDS) as FileKind[];
  const kind = kinds[randomInt(kinds.length)]!;
  const size = randomInt(20) === 0 ? randomInt(16 * 1024, 256 * 1024) : randomInt(64, 16 * 1024);
  return { kind, size, offset: randomInt(BLOCK - size) };
}

export function fileBytes(spec: FileSpec): Buffer {
  const { head, block } = FILE_KINDS[spec.kind];
  return Buffer.concat([head, block.subarray(spec.offset, spec.offset + spec.size - head.length)]);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const ROLES = ['user', 'assistant', 'system', 'tool'] as const;

/**
 * `<session id prefix>|<seq or *>|<padding length>|<padding>`: a message that names its session,
 * its expected seq when the client knows it in advance ('*' inside a burst of concurrent
 * appends) and its own length, so a torn, mixed-up or misplaced message shows on reading.
 */
export function messageContent(sessionId: string, seq: number | undefined): string {
  const padding = randomInt(0, 1500);
  return `${sessionId.slice(0, 8)}|${seq ?? '*'}|${padding}|${'m'.repeat(padding)}`;
}

/** Why a listed message is not what was appended, or undefined when it is. */
export function checkMessage(sessionId: string, message: { seq: number; content: string }): string | undefined {
  const match = /^([0-9a-f-]{8})\|(\d+|\*)\|(\d+)\|(m*)$/.exec(message.content);
  if (!match) return `seq ${message.seq}: content not as appended (${JSON.stringify(message.content.slice(0, 40))}...)`;
  if (match[1] !== sessionId.slice(0, 8)) return `seq ${message.seq}: content of session ${match[1]}... in ${sessionId}`;
  if (match[2] !== '*' && Number(match[2]) !== message.seq) return `seq ${message.seq}: content appended as seq ${match[2]}`;
  if (Number(match[3]) !== match[4]!.length) return `seq ${message.seq}: content length ${match[4]!.length}, appended ${match[3]}`;
  return undefined;
}

export function randomTag(): string {
  return randomBytes(6).toString('hex');
}

/** A session state of 50 B - 4 KB, identified by its tag. */
export function stateFor(tag: string): Record<string, unknown> {
  const items = randomInt(1, 40);
  return { tag, items: Array.from({ length: items }, (_, i) => ({ i, done: i % 2 === 0 })), note: 'n'.repeat(randomInt(0, 2500)) };
}
