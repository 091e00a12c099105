/**
 * SessionStore: one user's view of storage, and the only storage object routers see.
 *
 * It is bound to a single user id at construction and refuses to exist without a valid
 * one: there is no default user and no way to name another user's data through it. It
 * owns the session rules (versions, ETags, size limits, quotas) and creates every id and
 * timestamp; the backends below it (see ports.ts) own persistence.
 */
import { NotFound, PayloadTooLarge, PreconditionFailed, QuotaExceeded } from '../errors';
import { isValidObjectId, isValidUserId, newObjectId } from './ids';
import type { Limits } from './limits';
import type { CursorCodec } from './listing-cursor';
import type {
  BlobStore,
  FileRecord,
  JsonObject,
  MetadataBackend,
  OpenedFile,
  SessionCursor,
  SessionDocument,
  SessionSummary,
  StoredMessage,
  Usage,
} from './ports';
import { Upload } from './upload';

export { isValidUserId };
export { FILE_OVERHEAD_BYTES } from './ports';
export type { FileRecord, JsonObject, Limits, OpenedFile, SessionDocument, SessionSummary, StoredMessage, Upload, Usage };

export interface StoreContext {
  backend: MetadataBackend;
  blobs: BlobStore;
  limits: Limits;
  now: () => Date;
  /** Signs the cursors of session and file listings. */
  cursors: CursorCodec;
}

/** `*` or the list of entity tags from an If-Match header. */
export type IfMatch = '*' | string[];

export interface Page<T, C> {
  items: T[];
  nextCursor: C | null;
}

export function etagOf(session: Pick<SessionDocument, 'version'>): string {
  return `"v${session.version}"`;
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

export class SessionStore {
  readonly userId: string;

  constructor(userId: unknown, private readonly context: StoreContext) {
    if (!isValidUserId(userId)) throw new Error('SessionStore requires a valid user id');
    this.userId = userId;
    // Bound for life: not even code holding the object can re-point it at another user.
    Object.freeze(this);
  }

  get limits(): Limits {
    return this.context.limits;
  }

  async createSession(input: { title: string; state: JsonObject }): Promise<SessionDocument> {
    this.checkStateSize(input.state);
    const now = this.context.now().toISOString();
    const session: SessionDocument = {
      id: newObjectId(),
      title: input.title,
      createdAt: now,
      updatedAt: now,
      version: 1,
      state: input.state,
    };
    await this.context.backend.createSession(this.userId, session, (usage, added) => {
      if (usage.sessions >= this.limits.sessions) {
        throw new QuotaExceeded(`At most ${this.limits.sessions} sessions per user.`, 'MAX_SESSIONS_PER_USER');
      }
      this.checkQuota(usage, added);
    });
    return session;
  }

  async getSession(sessionId: string): Promise<SessionDocument> {
    const session = isValidObjectId(sessionId) ? await this.context.backend.readSession(this.userId, sessionId) : null;
    if (!session) throw new NotFound('No such session.');
    return session;
  }

  /** Applies a change on top of whatever is current; `ifMatch` makes it conditional. */
  async updateSession(
    sessionId: string,
    changes: { title?: string | undefined; state?: JsonObject | undefined },
    ifMatch: IfMatch | undefined,
  ): Promise<SessionDocument> {
    if (changes.state !== undefined) this.checkStateSize(changes.state);
    const updated = isValidObjectId(sessionId)
      ? await this.context.backend.updateSession(
          this.userId,
          sessionId,
          (current) => {
            if (ifMatch !== undefined && ifMatch !== '*' && !ifMatch.includes(etagOf(current))) {
              throw new PreconditionFailed(`The session is at ${etagOf(current)}; reload it and apply the change again.`);
            }
            return {
              ...current,
              title: changes.title ?? current.title,
              state: changes.state ?? current.state,
              version: current.version + 1,
              updatedAt: this.context.now().toISOString(),
            };
          },
          (usage, added) => this.checkQuota(usage, added),
        )
      : null;
    if (!updated) throw new NotFound('No such session.');
    return updated;
  }

  async deleteSession(sessionId: string): Promise<void> {
    const deleted = isValidObjectId(sessionId) && (await this.context.backend.deleteSession(this.userId, sessionId));
    if (!deleted) throw new NotFound('No such session.');
  }

  async listSessions(page: { cursor: string | undefined; limit: number }): Promise<Page<SessionSummary, string>> {
    const position = page.cursor === undefined ? undefined : this.context.cursors.decode(this.userId, 'sessions', page.cursor);
    const after: SessionCursor | undefined = position && { updatedAt: position.at, id: position.id };
    const { items, more } = await this.context.backend.listSessions(this.userId, { after, limit: page.limit });
    const last = items.at(-1);
    return { items, nextCursor: more && last ? this.context.cursors.encode(this.userId, 'sessions', { at: last.updatedAt, id: last.id }) : null };
  }

  async appendMessage(
    sessionId: string,
    input: { role: string; content: string; metadata: JsonObject },
  ): Promise<StoredMessage> {
    if (jsonBytes({ content: input.content, metadata: input.metadata }) > this.limits.messageBytes) {
      throw new PayloadTooLarge(`A message's content and metadata may hold ${this.limits.messageBytes} bytes.`, 'MAX_MESSAGE_BYTES');
    }
    const createdAt = this.context.now().toISOString();
    const message = isValidObjectId(sessionId)
      ? await this.context.backend.appendMessage(
          this.userId,
          sessionId,
          (seq) => ({ id: newObjectId(), seq, role: input.role, content: input.content, metadata: input.metadata, createdAt }),
          (usage, added) => this.checkQuota(usage, added),
        )
      : null;
    if (!message) throw new NotFound('No such session.');
    return message;
  }

  async listMessages(sessionId: string, page: { after: number; limit: number }): Promise<Page<StoredMessage, number>> {
    const result = isValidObjectId(sessionId)
      ? await this.context.backend.listMessages(this.userId, sessionId, { afterSeq: page.after, limit: page.limit })
      : null;
    if (!result) throw new NotFound('No such session.');
    const last = result.items.at(-1);
    return { items: result.items, nextCursor: result.more && last ? last.seq : null };
  }

  /** Starts receiving files for a session; 404 before any byte is read if it does not exist. */
  async beginUpload(sessionId: string): Promise<Upload> {
    const quota = isValidObjectId(sessionId)
      ? await this.context.backend.beginUpload(this.userId, sessionId, {
          admit: (usage, added) => this.checkQuota(usage, added),
          admitFile: (files) => {
            if (files >= this.limits.filesPerSession) {
              throw new QuotaExceeded(`A session may hold at most ${this.limits.filesPerSession} files.`, 'MAX_FILES_PER_SESSION');
            }
          },
        })
      : null;
    if (!quota) throw new NotFound('No such session.');
    return new Upload(this.userId, sessionId, quota, this.context.blobs, this.limits.uploadTypes, this.context.now);
  }

  /** Oldest first, a page at a time; the cursor is bound to this session. */
  async listFiles(sessionId: string, page: { cursor: string | undefined; limit: number }): Promise<Page<FileRecord, string>> {
    const listing = `files:${sessionId}`;
    const position = page.cursor === undefined ? undefined : this.context.cursors.decode(this.userId, listing, page.cursor);
    const result = isValidObjectId(sessionId)
      ? await this.context.backend.listFiles(this.userId, sessionId, {
          after: position && { createdAt: position.at, id: position.id },
          limit: page.limit,
        })
      : null;
    if (!result) throw new NotFound('No such session.');
    const last = result.items.at(-1);
    return {
      items: result.items,
      nextCursor: result.more && last ? this.context.cursors.encode(this.userId, listing, { at: last.createdAt, id: last.id }) : null,
    };
  }

  /** Another session's file id, like a missing one, is a 404; so is a record whose bytes are gone. */
  async openFile(sessionId: string, fileId: string): Promise<OpenedFile> {
    const record =
      isValidObjectId(sessionId) && isValidObjectId(fileId)
        ? await this.context.backend.findFile(this.userId, sessionId, fileId)
        : null;
    const blob = record && (await this.context.blobs.open({ userId: this.userId, sessionId, fileId: record.id }));
    if (!record || !blob) throw new NotFound('No such file.');
    return { record, size: blob.size, stream: (range) => blob.stream(range), close: () => blob.close() };
  }

  async deleteFile(sessionId: string, fileId: string): Promise<void> {
    const deleted =
      isValidObjectId(sessionId) &&
      isValidObjectId(fileId) &&
      (await this.context.backend.deleteFile(this.userId, sessionId, fileId));
    if (!deleted) throw new NotFound('No such file.');
  }

  usage(): Promise<Usage> {
    return this.context.backend.usage(this.userId);
  }

  eraseAll(): Promise<void> {
    return this.context.backend.deleteUser(this.userId);
  }

  private checkStateSize(state: JsonObject): void {
    if (jsonBytes(state) > this.limits.stateBytes) {
      throw new PayloadTooLarge(`A session's state may hold ${this.limits.stateBytes} bytes of JSON.`, 'MAX_STATE_BYTES');
    }
  }

  private checkQuota(usage: Usage, addedBytes: number): void {
    if (addedBytes > 0 && usage.bytes + addedBytes > this.limits.bytes) {
      throw new QuotaExceeded(`This user's data may hold ${this.limits.bytes} bytes.`, 'USER_QUOTA_BYTES');
    }
  }
}
