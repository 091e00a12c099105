/**
 * The example's screen: sign in with a token, list and edit sessions, chat, and move files.
 * Everything the service returns is put on the page as text (textContent), never as HTML.
 * `#/sessions/<id>` opens a session, so a session's address can be shared and pasted.
 */
import { ApiError, VaultClient, type Message, type Session, type SessionSummary, type StoredFile } from './api';
import { describeError } from './describe-error';

interface ExampleConfig {
  apiBase: string;
  devTokens: boolean;
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

function form(id: string): HTMLFormElement {
  return element<HTMLFormElement>(id);
}

function field(owner: HTMLFormElement, name: string): HTMLInputElement {
  return owner.elements.namedItem(name) as HTMLInputElement;
}

function item(text: string, className?: string): HTMLLIElement {
  const li = document.createElement('li');
  li.textContent = text;
  if (className) li.className = className;
  return li;
}

function button(label: string, onClick: () => void, className?: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Types a browser shows in an <img> without running anything (not SVG). */
const THUMBNAIL_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

class ExampleApp {
  private readonly client: VaultClient;
  private current: { session: Session; etag: string } | undefined;
  private sessionCursor: string | null = null;
  private messageCursor: number | null = null;
  private fileCursor: string | null = null;
  /** Object URLs of the thumbnails on the page, revoked when the list they are in goes away. */
  private readonly thumbnails = new Set<string>();

  constructor(private readonly config: ExampleConfig) {
    this.client = new VaultClient(`${config.apiBase}/api/v1`);
  }

  start(): void {
    element('mint-form').hidden = !this.config.devTokens;
    form('mint-form').addEventListener('submit', (e) => this.run(e, () => this.mintToken()));
    form('token-form').addEventListener('submit', (e) => this.run(e, () => this.signIn(field(form('token-form'), 'token').value)));
    form('create-form').addEventListener('submit', (e) => this.run(e, () => this.createSession()));
    form('rename-form').addEventListener('submit', (e) => this.run(e, () => this.rename()));
    form('message-form').addEventListener('submit', (e) => this.run(e, () => this.sendMessage()));
    form('upload-form').addEventListener('submit', (e) => this.run(e, () => this.upload()));
    element('refresh').addEventListener('click', () => void this.run(undefined, () => this.loadSessions()));
    element('more-sessions').addEventListener('click', () => void this.run(undefined, () => this.loadSessions(true)));
    element('more-messages').addEventListener('click', () => void this.run(undefined, () => this.loadMessages(true)));
    element('more-files').addEventListener('click', () => void this.run(undefined, () => this.loadFiles(true)));
    element('delete-session').addEventListener('click', () => void this.run(undefined, () => this.deleteSession()));
    window.addEventListener('hashchange', () => void this.run(undefined, () => this.route()));
  }

  /** Runs an action, showing its failure as one readable sentence. */
  private async run(event: Event | undefined, action: () => Promise<void>): Promise<void> {
    event?.preventDefault();
    this.showError(undefined);
    try {
      await action();
    } catch (error) {
      this.showError(describeError(error));
      if (error instanceof ApiError && error.status === 401) this.signOut();
    }
  }

  private showError(message: string | undefined): void {
    const box = element('error');
    box.hidden = message === undefined;
    box.textContent = message ?? '';
  }

  private async mintToken(): Promise<void> {
    const userId = field(form('mint-form'), 'user').value.trim();
    const res = await fetch('dev-token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    const body = (await res.json()) as { token?: string; error?: string };
    if (!res.ok || !body.token) throw new Error(body.error ?? `the example server answered ${res.status}`);
    await this.signIn(body.token);
  }

  private async signIn(token: string): Promise<void> {
    this.client.signIn(token);
    await this.showUsage();
    element('signin').hidden = true;
    element('workspace').hidden = false;
    await this.loadSessions();
    await this.route();
  }

  private async showUsage(): Promise<void> {
    const me = await this.client.me();
    element('whoami').textContent = `Signed in as ${me.userId} · ${me.usage.sessions} sessions, ${formatBytes(me.usage.bytes)} of ${formatBytes(me.limits.bytes)}`;
  }

  private signOut(): void {
    this.client.signOut();
    this.hideSession();
    element('whoami').textContent = '';
    element('signin').hidden = false;
    element('workspace').hidden = true;
  }

  private async loadSessions(more = false): Promise<void> {
    if (!more) await this.showUsage();
    const page = await this.client.listSessions(more ? (this.sessionCursor ?? undefined) : undefined);
    const list = element('session-list');
    if (!more) list.replaceChildren();
    for (const summary of page.items) list.append(this.sessionItem(summary));
    this.sessionCursor = page.nextCursor;
    element('more-sessions').hidden = page.nextCursor === null;
  }

  private sessionItem(summary: SessionSummary): HTMLLIElement {
    const li = item('');
    li.dataset.id = summary.id;
    if (summary.id === this.current?.session.id) li.className = 'current';
    if (summary.damaged) {
      // The service cannot read this session back; deleting it is all that can be done.
      li.append(
        `${summary.title || 'Untitled'} (damaged) `,
        button('Delete', () => void this.run(undefined, () => this.deleteDamagedSession(summary.id)), 'danger'),
      );
      return li;
    }
    li.append(button(summary.title, () => (window.location.hash = `#/sessions/${summary.id}`)));
    return li;
  }

  private async deleteDamagedSession(id: string): Promise<void> {
    if (!window.confirm('This session is damaged and cannot be opened. Delete it and everything in it?')) return;
    await this.client.deleteSession(id);
    await this.loadSessions();
  }

  private async createSession(): Promise<void> {
    const input = field(form('create-form'), 'title');
    const session = await this.client.createSession(input.value);
    input.value = '';
    await this.loadSessions();
    window.location.hash = `#/sessions/${session.id}`;
  }

  /** Opens the session named in the address, if any. */
  private async route(): Promise<void> {
    const match = /^#\/sessions\/([^/]+)$/.exec(window.location.hash);
    this.hideSession();
    if (!match || !this.client.signedIn) return;
    this.current = await this.client.getSession(decodeURIComponent(match[1]!));
    this.renderSession();
    await Promise.all([this.loadMessages(), this.loadFiles()]);
    element('session').hidden = false;
  }

  private renderSession(): void {
    if (!this.current) return;
    const { session } = this.current;
    element('session-title').textContent = session.title;
    element('session-meta').textContent = `version ${session.version} · updated ${new Date(session.updatedAt).toLocaleString()}`;
    field(form('rename-form'), 'title').value = session.title;
    for (const li of element('session-list').querySelectorAll('li')) {
      li.classList.toggle('current', li.dataset.id === session.id);
    }
  }

  private async rename(): Promise<void> {
    if (!this.current) return;
    const title = field(form('rename-form'), 'title').value;
    try {
      this.current = await this.client.renameSession(this.current.session.id, title, this.current.etag);
    } catch (error) {
      // Someone else changed it: show what is there now, then say why nothing was saved.
      if (error instanceof ApiError && (error.status === 412 || error.status === 409)) {
        this.current = await this.client.getSession(this.current.session.id);
        this.renderSession();
      }
      throw error;
    }
    this.renderSession();
    await this.loadSessions();
  }

  private async deleteSession(): Promise<void> {
    if (!this.current || !window.confirm(`Delete "${this.current.session.title}" and everything in it?`)) return;
    await this.client.deleteSession(this.current.session.id);
    this.current = undefined;
    window.location.hash = '';
    this.hideSession();
    await this.loadSessions();
  }

  private async loadMessages(more = false): Promise<void> {
    if (!this.current) return;
    const page = await this.client.listMessages(this.current.session.id, more ? (this.messageCursor ?? 0) : 0);
    const list = element('message-list');
    if (!more) list.replaceChildren();
    for (const message of page.items) list.append(this.messageItem(message));
    this.messageCursor = page.nextCursor;
    element('more-messages').hidden = page.nextCursor === null;
  }

  private messageItem(message: Message): HTMLLIElement {
    const li = item('');
    const role = document.createElement('span');
    role.className = 'role';
    role.textContent = message.role;
    li.append(role, document.createTextNode(message.content));
    return li;
  }

  private async sendMessage(): Promise<void> {
    if (!this.current) return;
    const owner = form('message-form');
    const role = (owner.elements.namedItem('role') as HTMLSelectElement).value as Message['role'];
    const content = field(owner, 'content');
    const message = await this.client.appendMessage(this.current.session.id, role, content.value);
    content.value = '';
    if (this.messageCursor === null) element('message-list').append(this.messageItem(message));
  }

  private async loadFiles(more = false): Promise<void> {
    if (!this.current) return;
    const page = await this.client.listFiles(this.current.session.id, more ? (this.fileCursor ?? undefined) : undefined);
    const list = element('file-list');
    if (!more) {
      this.clearThumbnails();
      list.replaceChildren();
    }
    list.append(...page.items.map((file) => this.fileItem(file)));
    this.fileCursor = page.nextCursor;
    element('more-files').hidden = page.nextCursor === null;
  }

  private fileItem(file: StoredFile): HTMLLIElement {
    const li = item('');
    if (THUMBNAIL_TYPES.has(file.contentType)) li.append(this.thumbnail(file));
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `${file.name} · ${formatBytes(file.size)} · ${file.contentType}`;
    // The buttons wrap together, under the name, on a narrow screen.
    const actions = document.createElement('span');
    actions.className = 'actions';
    actions.append(
      button('Download', () => void this.run(undefined, () => this.download(file))),
      button('Delete', () => void this.run(undefined, () => this.deleteFile(file)), 'danger'),
    );
    li.append(name, actions);
    return li;
  }

  /**
   * An image file's thumbnail. The bytes are fetched like a download, with the token in the
   * Authorization header, and shown through an object URL: an <img src> pointing at the API
   * could only authenticate with the token in the URL, where logs and history keep it.
   */
  private thumbnail(file: StoredFile): HTMLImageElement {
    const img = document.createElement('img');
    img.className = 'thumbnail';
    img.alt = `Preview of ${file.name}`;
    const session = this.current?.session.id;
    if (session === undefined) return img;
    this.client.downloadFile(session, file.id).then(
      (blob) => {
        // The list was redrawn while the bytes were on their way: this image is not shown.
        if (!img.isConnected) return;
        const url = URL.createObjectURL(blob);
        this.thumbnails.add(url);
        img.src = url;
      },
      // A preview is a nicety: a failure (a file gone, a rate limit) shows no image, no error.
      () => img.remove(),
    );
    // Bytes that are not an image after all (the type is the uploader's claim): no preview.
    img.addEventListener('error', () => {
      URL.revokeObjectURL(img.src);
      this.thumbnails.delete(img.src);
      img.remove();
    });
    return img;
  }

  /** Closes the open session; its thumbnails are no longer shown, so their URLs are revoked. */
  private hideSession(): void {
    element('session').hidden = true;
    this.current = undefined;
    this.clearThumbnails();
    element('file-list').replaceChildren();
  }

  private clearThumbnails(): void {
    for (const url of this.thumbnails) URL.revokeObjectURL(url);
    this.thumbnails.clear();
  }

  private async upload(): Promise<void> {
    if (!this.current) return;
    const input = field(form('upload-form'), 'files');
    const files = [...(input.files ?? [])];
    if (files.length === 0) return;
    const progress = element<HTMLProgressElement>('upload-progress');
    progress.value = 0;
    progress.hidden = false;
    try {
      await this.client.uploadFiles(this.current.session.id, files, (fraction) => (progress.value = fraction));
      input.value = '';
    } finally {
      progress.hidden = true;
    }
    await Promise.all([this.loadFiles(), this.showUsage()]);
  }

  /** Fetches the bytes with the token, then hands them to the browser as a download. */
  private async download(file: StoredFile): Promise<void> {
    if (!this.current) return;
    const blob = await this.client.downloadFile(this.current.session.id, file.id);
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = file.name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  private async deleteFile(file: StoredFile): Promise<void> {
    if (!this.current) return;
    await this.client.deleteFile(this.current.session.id, file.id);
    await this.loadFiles();
  }
}

async function main(): Promise<void> {
  const config = (await (await fetch('config.json')).json()) as ExampleConfig;
  new ExampleApp(config).start();
}

void main();
