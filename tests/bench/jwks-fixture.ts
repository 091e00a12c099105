/**
 * An identity provider's key set for the bench: one RSA key served as a JWKS on a loopback
 * port from the bench process (the service fetches it once at startup, so it competes with
 * nothing while requests are measured), and RS256 tokens signed with it.
 */
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';

export interface JwksFixture {
  jwksUrl: string;
  bearer(userId: string): Record<string, string>;
  close(): Promise<void>;
}

export async function startJwksFixture(): Promise<JwksFixture> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'bench-key-1';
  const body = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] });
  const server = http.createServer((_req, res) => res.setHeader('Content-Type', 'application/json').end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    bearer: (userId) => ({
      Authorization: `Bearer ${jwt.sign({ sub: userId }, privateKey, { algorithm: 'RS256', keyid: kid, expiresIn: 3600 })}`,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
