/**
 * A hand-built identity provider on a loopback port for the failure cases a real one will not
 * produce on demand: it serves a JWKS (and, if asked, a discovery document) of keys it holds
 * and signs tokens with them, and can instead hang, answer 500, send garbage or a huge
 * document. It counts the JWKS requests it receives.
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';

export type JwksMode = 'serve' | 'hang' | 'error' | 'garbage' | 'no-keys' | 'huge';

export interface HeldKeyPair {
  kid: string | undefined;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The JWK's own `alg` member, when it has one. */
  jwkAlg: string | undefined;
}

export interface JwksServer {
  origin: string;
  jwksUrl: string;
  /** JWKS requests received so far (any mode). */
  jwksRequests: number;
  mode: JwksMode;
  keys: HeldKeyPair[];
  /** Adds a key to the published set (first by default) and returns it. */
  addKey(options?: { type?: 'rsa' | 'ec'; kid?: string | null; jwkAlg?: string }): HeldKeyPair;
  /** Serves `document` at /.well-known/openid-configuration (under `issuerPath`). */
  serveDiscovery(issuerPath: string, document: Record<string, unknown>): void;
  /** A token signed with `key` (the first key by default), its kid in the header unless the key has none or `options.keyid` says otherwise. */
  sign(payload: Record<string, unknown>, key?: HeldKeyPair, options?: jwt.SignOptions): string;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  const discovery = new Map<string, Record<string, unknown>>();
  const hanging = new Set<http.ServerResponse>();
  const state: JwksServer = {
    origin: '',
    jwksUrl: '',
    jwksRequests: 0,
    mode: 'serve',
    keys: [],
    addKey(options = {}) {
      const type = options.type ?? 'rsa';
      const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const held: HeldKeyPair = {
        kid: options.kid === null ? undefined : (options.kid ?? randomUUID()),
        alg: type === 'rsa' ? 'RS256' : 'ES256',
        privateKey: pair.privateKey,
        publicKey: pair.publicKey,
        jwkAlg: options.jwkAlg,
      };
      state.keys.unshift(held);
      return held;
    },
    serveDiscovery(issuerPath, document) {
      discovery.set(`${issuerPath.replace(/\/$/, '')}/.well-known/openid-configuration`, document);
    },
    sign(payload, key = state.keys[0]!, options = {}) {
      return jwt.sign(payload, key.privateKey, {
        algorithm: key.alg,
        expiresIn: 600,
        ...(key.kid === undefined ? {} : { keyid: key.kid }),
        ...options,
      });
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const jwks = () => ({
    keys: state.keys.map((k) => ({
      ...k.publicKey.export({ format: 'jwk' }),
      use: 'sig',
      ...(k.kid === undefined ? {} : { kid: k.kid }),
      ...(k.jwkAlg === undefined ? {} : { alg: k.jwkAlg }),
    })),
  });
  const server = http.createServer((req, res) => {
    const found = discovery.get(req.url ?? '');
    if (found) {
      res.setHeader('Content-Type', 'application/json').end(JSON.stringify(found));
      return;
    }
    if (req.url !== '/jwks.json') {
      res.statusCode = 404;
      res.end();
      return;
    }
    state.jwksRequests += 1;
    switch (state.mode) {
      case 'serve':
        res.setHeader('Content-Type', 'application/json').end(JSON.stringify(jwks()));
        return;
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'error':
        res.statusCode = 500;
        res.end('{"error":"down"}');
        return;
      case 'garbage':
        res.setHeader('Content-Type', 'application/json').end('<html>not a jwks</html>');
        return;
      case 'no-keys':
        res.setHeader('Content-Type', 'application/json').end('{"keys":[]}');
        return;
      case 'huge': {
        // A valid JWKS padded past any sane size, streamed without a Content-Length.
        res.setHeader('Content-Type', 'application/json');
        res.write(`{"padding":"`);
        const chunk = 'x'.repeat(64 * 1024);
        for (let i = 0; i < 64; i++) res.write(chunk);
        res.end(`","keys":${JSON.stringify(jwks().keys)}}`);
        return;
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.jwksUrl = `${state.origin}/jwks.json`;
  return state;
}
