/**
 * `/docs`: the API reference for people, rendered in their browser by Redoc from
 * `/openapi.json`. Everything the page loads comes from this service: the page, Redoc's
 * bundle (from node_modules, see redoc-bundle.ts) and the document. Public like the document
 * it shows; mounted only when API_DOCS is on (by default outside production).
 */
import type { IRouter } from 'express';
import { redocBundle } from '../../redoc-bundle';

export const REDOC_SCRIPT_PATH = '/docs/redoc.standalone.js';

/**
 * The page's own policy, replacing the API's `default-src 'none'`: scripts from this origin
 * only (no inline script: Redoc starts itself from the `<redoc spec-url>` element); styles
 * inline, as styled-components injects them; the document fetched from this origin; the
 * search index built in a worker Redoc starts from a blob; its icons, SVG in data: URLs (and
 * the page's empty icon, so the browser asks for no /favicon.ico). No frames, forms, plugins
 * or base URL. tests/e2e/api-docs.test.ts shows each is needed: without one, Chromium logs a
 * refusal and the page loses its styles, its search or its icons.
 */
export const API_DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'unsafe-inline'",
  'img-src data:',
  "connect-src 'self'",
  'worker-src blob:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>session-vault API reference</title>
<link rel="icon" href="data:,">
<style>body { margin: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="${REDOC_SCRIPT_PATH}"></script>
</body>
</html>
`;

export function apiDocsRoutes(router: IRouter): void {
  const bundle = redocBundle();
  router.get('/docs', (_req, res) => {
    res.set({ 'Content-Security-Policy': API_DOCS_CSP, 'Cache-Control': 'no-cache' }).type('html').send(PAGE);
  });
  router.get(REDOC_SCRIPT_PATH, (req, res) => {
    res.set({ 'Cache-Control': 'no-cache', ETag: bundle.etag });
    // `req.fresh` compares If-None-Match with the ETag just set.
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.type('text/javascript').send(bundle.text);
  });
}
