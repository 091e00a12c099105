/**
 * A small client for the session-vault API, the part worth copying into your own SPA.
 *
 * - The token lives in this object's memory only: never localStorage or a cookie, so a
 *   script injected elsewhere cannot read it from storage, and a reload signs you out.
 * - Every error answer is problem+json; it becomes an ApiError carrying the status, the
 *   service's detail, and Retry-After for 429.
 * - Edits send If-Match with the ETag the session was read with, so two tabs never
 *   silently overwrite each other.
 */

// The shapes the API answers with (see /openapi.json), declared here so that this file can
// be copied into another project on its own.
export interface Session {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  version: number;
  state: Record<string, unknown>;
}

/** `damaged`: the service cannot read this session back; it can only be deleted. */
export type SessionSummary = Omit<Session, 'state'> & { damaged?: true };

export interface Message {
  id: string;
  seq: number;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export interface StoredFile {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  createdAt: string;
}

export interface Me {
  userId: string;
  usage: { sessions: number; bytes: number };
  limits: { sessions: number; bytes: number; uploadBytes: number; filesPerUpload: number; uploadTypes: string[] };
}

export interface Page<T, C> {
  items: T[];
  nextCursor: C | null;
}

/** An answer that was not a success, or no answer at all (status 0: network or CORS). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly retryAfterSeconds: number | undefined,
    readonly limit: string | undefined,
    /** The problem type (`/problems/...`), when the service sent one. */
    readonly type?: string,
  ) {
    super(`${status} ${title}: ${detail}`);
  }
}

async function problemOf(status: number, headers: { get(name: string): string | null }, body: string): Promise<ApiError> {
  let problem: { type?: string; title?: string; detail?: string; limit?: string } = {};
  try {
    problem = JSON.parse(body) as typeof problem;
  } catch {
    // not a problem document (a proxy's error page): the status alone speaks
  }
  const retryAfter = headers.get('Retry-After');
  return new ApiError(
    status,
    problem.title ?? 'Error',
    problem.detail ?? '',
    retryAfter === null ? undefined : Number(retryAfter),
    problem.limit,
    problem.type,
  );
}

export class VaultClient {
  private token: string | undefined;

  constructor(private readonly baseUrl: string) {}

  signIn(token: string): void {
    this.token = token.trim();
  }

  signOut(): void {
    this.token = undefined;
  }

  get signedIn(): boolean {
    return this.token !== undefined;
  }

  me(): Promise<Me> {
    return this.json('GET', '/me');
  }

  listSessions(cursor?: string, limit = 10): Promise<Page<SessionSummary, string>> {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    return this.json('GET', `/sessions?${query}`);
  }

  createSession(title: string): Promise<Session> {
    return this.json('POST', '/sessions', { title });
  }

  /** The session and the ETag to send back with an edit. */
  async getSession(id: string): Promise<{ session: Session; etag: string }> {
    const res = await this.send('GET', `/sessions/${encodeURIComponent(id)}`);
    return { session: (await res.json()) as Session, etag: res.headers.get('ETag') ?? '' };
  }

  /** Renames only if nobody changed the session since `etag` (412 otherwise). */
  async renameSession(id: string, title: string, etag: string): Promise<{ session: Session; etag: string }> {
    const res = await this.send('PATCH', `/sessions/${encodeURIComponent(id)}`, { title }, { 'If-Match': etag });
    return { session: (await res.json()) as Session, etag: res.headers.get('ETag') ?? '' };
  }

  async deleteSession(id: string): Promise<void> {
    await this.send('DELETE', `/sessions/${encodeURIComponent(id)}`);
  }

  listMessages(id: string, after = 0, limit = 20): Promise<Page<Message, number>> {
    return this.json('GET', `/sessions/${encodeURIComponent(id)}/messages?after=${after}&limit=${limit}`);
  }

  appendMessage(id: string, role: Message['role'], content: string): Promise<Message> {
    return this.json('POST', `/sessions/${encodeURIComponent(id)}/messages`, { role, content });
  }

  listFiles(id: string, cursor?: string, limit = 50): Promise<Page<StoredFile, string>> {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    return this.json('GET', `/sessions/${encodeURIComponent(id)}/files?${query}`);
  }

  /**
   * Uploads files in one request with XMLHttpRequest, the browser API that reports upload
   * progress; `onProgress` gets a fraction from 0 to 1.
   */
  uploadFiles(id: string, files: File[], onProgress: (fraction: number) => void): Promise<StoredFile[]> {
    const form = new FormData();
    for (const file of files) form.append('file', file, file.name);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${this.baseUrl}/sessions/${encodeURIComponent(id)}/files`);
      if (this.token) xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onerror = () => reject(new ApiError(0, 'Network error', 'The service could not be reached.', undefined, undefined));
      xhr.onload = () => {
        const headers = { get: (name: string) => xhr.getResponseHeader(name) };
        if (xhr.status === 201) resolve((JSON.parse(xhr.responseText) as { items: StoredFile[] }).items);
        else void problemOf(xhr.status, headers, xhr.responseText).then(reject);
      };
      xhr.send(form);
    });
  }

  async downloadFile(id: string, fileId: string): Promise<Blob> {
    return (await this.send('GET', `/sessions/${encodeURIComponent(id)}/files/${encodeURIComponent(fileId)}`)).blob();
  }

  async deleteFile(id: string, fileId: string): Promise<void> {
    await this.send('DELETE', `/sessions/${encodeURIComponent(id)}/files/${encodeURIComponent(fileId)}`);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T;
  }

  private async send(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch {
      // The browser says no more than this, on purpose: a refused CORS request and an
      // unreachable host look the same to a page.
      throw new ApiError(0, 'Network error', 'The service could not be reached, or refused this origin (CORS).', undefined, undefined);
    }
    if (!res.ok) throw await problemOf(res.status, res.headers, await res.text());
    return res;
  }
}
