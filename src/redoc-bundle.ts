/**
 * Redoc's standalone bundle, read once, for the reference page at /docs:
 * the service serves it itself, so the page loads nothing from a CDN. The bundle's sidebar
 * shows Redocly's logo from their CDN; the page's CSP would refuse that image (an error in
 * every visitor's console), so its address is emptied here and the logo is not shown (the
 * bundle hides an image that fails to load). Its link to Redoc's site stays.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const THIRD_PARTY_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

export interface RedocBundle {
  /** The script, as served. */
  text: string;
  /** A strong ETag of `text`, so a browser revalidates it for the price of a 304. */
  etag: string;
}

let loaded: RedocBundle | undefined;

export function redocBundle(): RedocBundle {
  if (loaded) return loaded;
  // Built, the bundle is beside the code (scripts/build.mjs copies it: redoc is a dev
  // dependency, absent from the runtime image); run from source, it is in node_modules.
  const built = path.join(__dirname, 'vendor', 'redoc.standalone.js');
  const file = existsSync(built) ? built : require.resolve('redoc/bundles/redoc.standalone.js');
  const text = readFileSync(file, 'utf8').replaceAll(THIRD_PARTY_LOGO, '');
  loaded = { text, etag: `"${createHash('sha256').update(text).digest('base64url')}"` };
  return loaded;
}
