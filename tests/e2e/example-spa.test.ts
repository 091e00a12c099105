/**
 * The example SPA in a real Chromium against the real service process: two users in two
 * browser contexts, files through FormData and back, tenancy through the UI, the rate-limit
 * message, and CORS enforced by the browser itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import type { Browser, Page } from 'playwright-core';
import { buildExample, startExampleServer, type ExampleServer } from '../../examples/spa/server';
import { describeInChromium, launchChromium } from '../helpers/browser';
import { freePort } from '../helpers/free-port';
import { startServer, type ServerProcess } from '../helpers/server-process';
import { makeTempDir, TEST_SECRET } from '../helpers/test-app';

const OUTPUT = path.join(__dirname, 'output');
jest.setTimeout(60_000);
const RATE_LIMIT = 40;
const MAX_UPLOAD_BYTES = 64 * 1024;
const mint = (userId: string) => jwt.sign({ sub: userId }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });

const CSV = Buffer.from('name,amount\nalice,10\nbob,20\n');
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(4096)]);

/** A real image a browser decodes: `size` x `size` RGB, a diagonal gradient. */
function gradientPng(size: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const framed = Buffer.alloc(body.length + 8);
    framed.writeUInt32BE(data.length, 0);
    body.copy(framed, 4);
    framed.writeUInt32BE(crc32(body), body.length + 4);
    return framed;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [across, down] = [Math.round((x * 255) / (size - 1)), Math.round((y * 255) / (size - 1))];
      rows.set([across, 120 + (down >> 1), 255 - down], y * (1 + size * 3) + 1 + x * 3);
    }
  }
  return Buffer.concat([PNG.subarray(0, 8), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** How much wider than the viewport the page is (0: it fits, no sideways scrolling). */
const overflow = (page: Page) => page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
/** Waits until the first thumbnail has decoded: naturalWidth is 0 until an image has real pixels. */
// A function, not a string: the page's CSP refuses the eval a polled string would need.
type ImageQuery = { document: { querySelector(selector: string): { naturalWidth: number } | null } };
const thumbnailDecoded = (page: Page) =>
  page.waitForFunction(() => ((globalThis as unknown as ImageQuery).document.querySelector('img.thumbnail')?.naturalWidth ?? 0) > 0);

describeInChromium('the example SPA in Chromium', () => {
  let service: ServerProcess;
  let example: ExampleServer;
  let unlisted: ExampleServer;
  let browser: Browser;

  beforeAll(async () => {
    await buildExample();
    const examplePort = await freePort();
    service = await startServer({
      DATA_DIR: await makeTempDir(),
      JWT_SECRET: TEST_SECRET,
      CORS_ORIGINS: `http://127.0.0.1:${examplePort}`,
      RATE_LIMIT_MAX: String(RATE_LIMIT),
      RATE_LIMIT_IP_MAX: '100000',
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
    });
    example = await startExampleServer({ host: '127.0.0.1', port: examplePort, apiBase: service.url, mintToken: mint });
    unlisted = await startExampleServer({ host: '127.0.0.1', port: 0, apiBase: service.url, mintToken: mint });
    browser = await launchChromium();
    await mkdir(OUTPUT, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await example?.close();
    await unlisted?.close();
    await service?.stop();
  });

  async function signedIn(userId: string, origin = example.url): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(origin);
    await page.getByLabel('User id').fill(userId);
    await page.getByRole('button', { name: 'Mint dev token' }).click();
    return page;
  }

  async function createSession(page: Page, title: string): Promise<string> {
    await page.getByLabel('New session').fill(title);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: title }).waitFor();
    return decodeURIComponent(new URL(page.url()).hash.replace('#/sessions/', ''));
  }

  const errorBox = (page: Page) => page.getByRole('alert');

  it('creates, chats, uploads a CSV and a PNG, downloads them back byte-identical, deletes one', async () => {
    const page = await signedIn('alice');
    await page.getByText('Signed in as alice').waitFor();
    await createSession(page, 'Trip plan');

    for (const text of ['Where should we go?', 'Lisbon.']) {
      await page.getByRole('textbox', { name: 'Message' }).fill(text);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByRole('list', { name: 'Message history' }).getByText(text).waitFor();
    }

    await page.getByLabel('Files', { exact: true }).setInputFiles([
      { name: 'budget.csv', mimeType: 'text/csv', buffer: CSV },
      { name: 'map.png', mimeType: 'image/png', buffer: PNG },
    ]);
    await page.getByRole('button', { name: 'Upload' }).click();
    const files = page.getByRole('list', { name: 'Stored files' });
    await files.getByText('budget.csv').waitFor();
    await files.getByText('map.png').waitFor();

    for (const [name, bytes] of [['budget.csv', CSV], ['map.png', PNG]] as const) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        files.locator('li', { hasText: name }).getByRole('button', { name: 'Download' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe(name);
      expect((await readFile(await download.path())).equals(bytes)).toBe(true);
    }

    // The rename goes out with If-Match and succeeds on the version the page holds.
    await page.getByLabel('Title').fill('Trip plan (final)');
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { name: 'Trip plan (final)' }).waitFor();
    expect(await errorBox(page).isHidden()).toBe(true);

    await writeFile(path.join(OUTPUT, 'example-spa.png'), await page.screenshot({ fullPage: true }));

    await files.locator('li', { hasText: 'budget.csv' }).getByRole('button', { name: 'Delete' }).click();
    await files.getByText('budget.csv').waitFor({ state: 'detached' });
    expect(await files.locator('li').count()).toBe(1);
    await page.context().close();
  });

  it("never shows bob alice's sessions, not even when he opens her session's address", async () => {
    const alice = await signedIn('alice');
    const aliceSession = await createSession(alice, 'Alice private notes');
    await alice.context().close();

    const bob = await signedIn('bob');
    await bob.getByText('Signed in as bob').waitFor();
    await bob.getByRole('list', { name: 'Your sessions' }).waitFor({ state: 'attached' });
    expect(await bob.getByRole('list', { name: 'Your sessions' }).locator('li').count()).toBe(0);

    // Pasted into the address bar of the same tab: the page stays, the session in it changes.
    await bob.goto(`${example.url}/#/sessions/${aliceSession}`);
    await errorBox(bob).getByText('Not found').waitFor();
    expect(await bob.getByText('Alice private notes').count()).toBe(0);
    expect(await bob.locator('#session').isHidden()).toBe(true);
    await bob.context().close();
  });

  it('keeps an edit made elsewhere (a stale rename is refused, the session reloaded), then deletes the session', async () => {
    const page = await signedIn('dora');
    const id = await createSession(page, 'Shared draft');
    // Another tab renames it first.
    const res = await fetch(`${service.url}/api/v1/sessions/${id}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${mint('dora')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Renamed in another tab' }),
    });
    expect(res.status).toBe(200);
    await page.getByLabel('Title').fill('My rename');
    await page.getByRole('button', { name: 'Rename' }).click();
    await errorBox(page).getByText('Someone changed this session').waitFor();
    await page.getByRole('heading', { name: 'Renamed in another tab' }).waitFor();

    // Deleting asks first (the dialog is accepted) and takes the session off the list.
    await page.getByRole('button', { name: 'Delete session' }).click();
    // The panel closes once the DELETE has been answered (the list may still show the old title:
    // the refused rename reloaded the session, not the list).
    await page.locator('#session').waitFor({ state: 'hidden' });
    await page.getByRole('list', { name: 'Your sessions' }).getByText('Renamed in another tab').waitFor({ state: 'detached' });
    expect((await fetch(`${service.url}/api/v1/sessions/${id}`, { headers: { Authorization: `Bearer ${mint('dora')}` } })).status).toBe(404);
    await page.context().close();
  });

  it('explains a bad token, a file too large and a file that is not what it claims', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(example.url);
    await page.getByLabel('Or paste a token').fill('not.a.token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await errorBox(page).getByText('Your token is missing, invalid or expired').waitFor();
    await context.close();

    const frank = await signedIn('frank');
    await createSession(frank, 'Frank files');
    const upload = async (name: string, mimeType: string, buffer: Buffer) => {
      await frank.getByLabel('Files', { exact: true }).setInputFiles([{ name, mimeType, buffer }]);
      await frank.getByRole('button', { name: 'Upload' }).click();
    };
    await upload('big.csv', 'text/csv', Buffer.alloc(MAX_UPLOAD_BYTES + 1, 'a'));
    await errorBox(frank).getByText(/^Too large \(A file may hold at most \d+ bytes\.\)\.$/).waitFor();
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(200)]);
    await upload('photo.png', 'image/png', elf);
    await errorBox(frank).getByText(/not accepted .*ELF executable/).waitFor();
    expect(await frank.getByRole('list', { name: 'Stored files' }).locator('li').count()).toBe(0);
    await frank.context().close();
  });

  it('tells a user who sent too many requests when to try again', async () => {
    const page = await signedIn('carol');
    await page.getByText('Signed in as carol').waitFor();
    const refresh = page.getByRole('button', { name: 'Refresh' });
    for (let i = 0; i < RATE_LIMIT && (await errorBox(page).isHidden()); i++) await refresh.click();
    await errorBox(page).getByText(/Too many requests\. Try again in \d+ s\./).waitFor();
    await page.context().close();
  });

  // Screenshots land in tests/e2e/output/; docs/example-spa-390.png and -1280.png are copies.
  it.each([390, 1280])('at %i px wide: signed out shows no Sessions panel, and no page is wider than the screen', async (width) => {
    const context = await browser.newContext({ viewport: { width, height: width < 600 ? 844 : 800 } });
    const page = await context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(example.url);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('heading', { name: 'Sessions' }).isVisible()).toBe(false);
    expect(await page.locator('#workspace').isVisible()).toBe(false);
    expect(await overflow(page)).toBeLessThanOrEqual(0);

    await page.getByLabel('User id').fill(`wide-${width}`);
    await page.getByRole('button', { name: 'Mint dev token' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    expect(await page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(false);
    // A long title and a long file name are what used to push a phone's page sideways.
    await createSession(page, 'Trip plan for the summer: Lisbon, Porto and the Douro valley');
    for (const text of ['Where should we go?', 'Lisbon, then the train up to Porto.']) {
      await page.getByRole('textbox', { name: 'Message' }).fill(text);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByRole('list', { name: 'Message history' }).getByText(text).waitFor();
    }
    await page.getByLabel('Files', { exact: true }).setInputFiles([
      { name: 'budget-for-the-whole-trip-including-trains.csv', mimeType: 'text/csv', buffer: CSV },
      { name: 'map.png', mimeType: 'image/png', buffer: gradientPng(64) },
    ]);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('img', { name: 'Preview of map.png' }).waitFor();
    await thumbnailDecoded(page);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await writeFile(path.join(OUTPUT, `example-spa-${width}.png`), await page.screenshot({ fullPage: true }));
    await context.close();
  });

  it('shows an uploaded image as a thumbnail fetched with the token in a header, never in a URL', async () => {
    const token = mint('gina');
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const requests: Array<{ url: string; authorization: string | undefined }> = [];
    context.on('request', (request) => requests.push({ url: request.url(), authorization: request.headers().authorization }));
    const page = await context.newPage();
    await page.goto(example.url);
    await page.getByLabel('Or paste a token').fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    const id = await createSession(page, 'Pictures');
    await page.getByLabel('Files', { exact: true }).setInputFiles([{ name: 'map.png', mimeType: 'image/png', buffer: gradientPng(48) }]);
    await page.getByRole('button', { name: 'Upload' }).click();
    const thumbnail = page.getByRole('img', { name: 'Preview of map.png' });
    await thumbnail.waitFor();
    await thumbnailDecoded(page);
    expect(await page.evaluate<number>("document.querySelector('img.thumbnail').naturalWidth")).toBe(48);
    const src = await thumbnail.getAttribute('src');
    expect(src).toMatch(/^blob:/);

    // The bytes came from the API with the token in the Authorization header...
    const fileGets = requests.filter((r) => r.url.startsWith(`${service.url}/api/v1/sessions/${id}/files/`));
    expect(fileGets.length).toBeGreaterThan(0);
    for (const r of fileGets) expect(r.authorization).toBe(`Bearer ${token}`);
    // ...and no address the page asked for, API, page or image, carries it.
    expect(requests.length).toBeGreaterThan(5);
    for (const r of requests) {
      expect(r.url).not.toContain(token);
      expect(r.url).not.toContain(token.split('.')[2]);
    }

    // Leaving the session takes the thumbnail off the page and revokes its object URL.
    await page.evaluate("window.location.hash = ''");
    await thumbnail.waitFor({ state: 'detached' });
    // An <img>, as img-src allows blob: (connect-src does not, so fetch would prove nothing).
    const stillLoads = await page.evaluate<boolean>(
      `new Promise((resolve) => { const probe = new Image(); probe.onload = () => resolve(true); probe.onerror = () => resolve(false); probe.src = ${JSON.stringify(src)}; })`,
    );
    expect(stillLoads).toBe(false);
    await context.close();
  });

  it('is refused by the browser itself on an origin not in CORS_ORIGINS', async () => {
    const page = await signedIn('erin', unlisted.url);
    await errorBox(page).getByText("refused this page's origin (CORS)").waitFor();
    const outcome = await page.evaluate(async (api) => {
      try {
        await fetch(`${api}/api/v1/me`, { headers: { Authorization: 'Bearer x.y.z' } });
        return 'answered';
      } catch (error) {
        return (error as Error).name;
      }
    }, service.url);
    expect(outcome).toBe('TypeError');
    await page.context().close();
  });
});
