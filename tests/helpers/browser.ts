/**
 * Debian's Chromium driven by playwright-core (Playwright cannot download a browser here).
 * Browser suites run only where the executable exists; elsewhere they are skipped with one
 * line saying why, so `npm test` still passes on a machine without it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describeIf } from './prerequisite';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumAvailable = existsSync(CHROMIUM);

export function describeInChromium(name: string, suite: () => void): void {
  describeIf(chromiumAvailable ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium)`, name, suite);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
