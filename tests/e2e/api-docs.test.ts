/**
 * The reference page at /docs in a real Chromium: Redoc renders every operation of the
 * served document under the page's own CSP, with no console error (a CSP refusal is one),
 * no failed request, and nothing fetched from any other origin. Its search, which runs in a
 * worker started from a blob, finds an operation.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { describeInChromium, launchChromium } from '../helpers/browser';
import { startTestApp, type TestApp } from '../helpers/test-app';

const OUTPUT = path.join(__dirname, 'output');
jest.setTimeout(60_000);

type Doc = { paths: Record<string, Record<string, { summary: string; operationId: string; tags: string[] }>> };

describeInChromium('the API reference page in Chromium', () => {
  let t: TestApp;
  let server: Server;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestApp({ NODE_ENV: 'development' });
    server = t.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    await mkdir(OUTPUT, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await t?.close();
  });

  it('renders every operation with no console error and no request elsewhere, and its search works', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Doc;
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
    expect(operations.length).toBeGreaterThan(10);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (!['blob:', 'data:'].includes(url.protocol) && url.origin !== base) elsewhere.push(request.url());
    });

    const response = await page.goto(`${base}/docs`);
    expect(response?.status()).toBe(200);
    // Redoc gives each operation a heading with a link to it under its tag, then its summary.
    for (const op of operations) {
      const heading = page.locator('h2', { has: page.locator(`a[href="#tag/${op.tags[0]}/operation/${op.operationId}"]`) });
      await heading.waitFor({ state: 'attached', timeout: 20_000 });
      expect((await heading.textContent())?.trim()).toBe(op.summary);
    }
    const search = page.getByPlaceholder('Search...');
    await search.fill('upload');
    // Results come from the index the worker built: without it, none are listed.
    const upload = operations.find((op) => op.summary.startsWith('Upload files'))!;
    await page.locator(`[data-role="search:results"] [data-item-id="tag/files/operation/${upload.operationId}"]`).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(OUTPUT, 'api-docs.png') });

    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    await context.close();
  });
});
