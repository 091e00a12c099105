/**
 * The example SPA's own web server, on an origin of its own (so every API call is a real
 * cross-origin request, as in production). It builds the TypeScript with esbuild, serves the
 * page, tells it where the API is (`/config.json`), and, for development only, mints tokens
 * (`POST /dev-token`): a real deployment gets its tokens from an identity provider.
 */
import type { Server } from 'node:http';
import path from 'node:path';
import { build } from 'esbuild';
import express from 'express';
import type { TokenMinter } from '../../src/cli/token-minter';
import { isValidUserId } from '../../src/sessions/ids';

const ROOT = __dirname;
const DIST = path.join(ROOT, 'dist');

/** Bundles src/main.ts into dist/app.js. */
export async function buildExample(): Promise<void> {
  await build({
    entryPoints: [path.join(ROOT, 'src', 'main.ts')],
    outfile: path.join(DIST, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  });
}

export interface ExampleServerOptions {
  host: string;
  port: number;
  /** The service's origin, e.g. http://127.0.0.1:3000. */
  apiBase: string;
  /** Development only: lets the page mint a token for any user id. */
  mintToken?: TokenMinter;
}

export interface ExampleServer {
  url: string;
  close(): Promise<void>;
}

export function startExampleServer(options: ExampleServerOptions): Promise<ExampleServer> {
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    // What a SPA talking to session-vault can run with: its own scripts and styles, and
    // connections to itself and the API only.
    res.set(
      'Content-Security-Policy',
      `default-src 'self'; connect-src 'self' ${options.apiBase}; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    );
    next();
  });
  app.get('/config.json', (_req, res) => {
    res.json({ apiBase: options.apiBase, devTokens: options.mintToken !== undefined });
  });
  const mint = options.mintToken;
  if (mint) {
    app.post('/dev-token', express.json(), (req, res) => {
      const userId: unknown = (req.body as { userId?: unknown } | undefined)?.userId;
      if (!isValidUserId(userId)) {
        res.status(400).json({ error: 'A user id is 1-64 characters of A-Z a-z 0-9 . _ @ | : + = -.' });
        return;
      }
      res.json({ token: mint(userId) });
    });
  }
  app.use(express.static(path.join(ROOT, 'public')));
  app.use(express.static(DIST));
  return new Promise((resolve, reject) => {
    const server: Server = app.listen(options.port, options.host);
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      resolve({
        url: `http://${options.host}:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
