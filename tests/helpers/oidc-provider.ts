/**
 * A real OpenID provider (oidc-provider) on a loopback port, for tests of the JWKS/OIDC token
 * verifier. oidc-provider is ESM-only and Jest cannot load it, so it runs as a child process
 * (oidc-provider-process.mjs); this side holds the keys, so a rotation restarts the child on the
 * same port with a new key set and the issuer and URLs stay the same.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import path from 'node:path';

const CHILD = path.join(__dirname, 'oidc-provider-process.mjs');
const START_TIMEOUT_MS = 20_000;

export interface TestIdentityProvider {
  issuer: string; // exactly what tokens carry in iss and discovery's issuer
  jwksUrl: string; // the jwks_uri from discovery
  /** A fresh access token for client `clientId` (default the first client) with aud = audience (default the first). */
  token(options?: { audience?: string; clientId?: string }): Promise<string>;
  /** Publishes a new signing key in front of the current ones and signs new tokens with it; the old keys stay published. Returns the new kid. Restarts the child on the same port, so issuer and URLs do not change. */
  rotate(): Promise<string>;
  /** Stops publishing every key but the current signing key (the end of a rotation). Same port. */
  dropOldKeys(): Promise<void>;
  /** kids currently published, signing key first. */
  kids(): string[];
  stop(): Promise<void>;
}

export interface IdentityProviderOptions {
  audiences?: string[];
  /** Client ids; each must be a valid user id of the service (a token's sub is its client id). */
  clients?: string[];
  /** Appended to `http://127.0.0.1:PORT` to form the issuer, e.g. `/oidc`. */
  issuerPath?: string;
  accessTokenTtlSeconds?: number;
}

type PrivateJwk = JsonWebKey & { kid: string; alg: string; use: 'sig' };

function newKey(): PrivateJwk {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

interface Child {
  proc: ChildProcessWithoutNullStreams;
  exited: Promise<void>;
  origin: string;
  issuer: string;
}

/** Spawns the provider and resolves on its "listening" line; rejects with its stderr if it exits or stays silent. */
async function spawnProvider(config: object): Promise<Child> {
  const proc = spawn(process.execPath, [CHILD], {
    env: { PATH: process.env.PATH ?? '', OIDC_TEST_CONFIG: JSON.stringify(config) },
  });
  let out = '';
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  try {
    const line = await new Promise<{ listening: string; issuer: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`oidc provider: no "listening" line in time:\n${err}`)), START_TIMEOUT_MS);
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (!out.includes('\n')) return;
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as { listening: string; issuer: string });
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`oidc provider exited with ${proc.exitCode ?? proc.signalCode} before listening:\n${err}`));
      });
    });
    return { proc, exited, origin: line.listening, issuer: line.issuer };
  } catch (e) {
    await kill();
    throw e;
  }
}

/** Asks the child to close its server, then waits for the exit (a restart reuses the port); SIGKILL if it lingers. */
async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 5_000);
  child.proc.kill('SIGTERM');
  await child.exited;
  clearTimeout(timer);
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

export async function startIdentityProvider(options: IdentityProviderOptions = {}): Promise<TestIdentityProvider> {
  const audiences = options.audiences ?? ['https://api.session-vault.test'];
  const clients = (options.clients ?? ['svc-client-a']).map((id) => ({
    client_id: id,
    client_secret: randomBytes(24).toString('base64url'),
  }));
  let keys = [newKey()];
  const config = (port: number) => ({
    port,
    issuerPath: options.issuerPath ?? '',
    keys,
    clients,
    audiences,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds,
  });

  let child = await spawnProvider(config(0));
  const port = Number(new URL(child.origin).port);
  let discovery: Record<string, unknown>;
  try {
    discovery = await getJson(`${child.issuer}/.well-known/openid-configuration`);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  const { issuer } = child;
  const tokenEndpoint = discovery.token_endpoint as string;

  /** The old process must be gone before the new one can bind the same port. */
  const restart = async () => {
    await stopChild(child);
    child = await spawnProvider(config(port));
  };

  return {
    issuer,
    jwksUrl: discovery.jwks_uri as string,
    async token({ audience = audiences[0]!, clientId = clients[0]!.client_id } = {}) {
      const client = clients.find((c) => c.client_id === clientId);
      if (!client) throw new Error(`oidc provider: no client ${clientId}`);
      // client_secret_basic form-encodes both parts before base64 (RFC 6749 2.3.1).
      const basic = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(basic).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience }),
      });
      const body = await res.text();
      if (res.status !== 200) throw new Error(`oidc provider token endpoint: ${res.status} ${body}`);
      const accessToken = (JSON.parse(body) as { access_token?: unknown }).access_token;
      if (typeof accessToken !== 'string' || accessToken.split('.').length !== 3) {
        throw new Error(`oidc provider issued no JWT access token: ${body}`);
      }
      return accessToken;
    },
    async rotate() {
      const key = newKey();
      keys = [key, ...keys];
      await restart();
      return key.kid;
    },
    async dropOldKeys() {
      keys = keys.slice(0, 1);
      await restart();
    },
    kids: () => keys.map((k) => k.kid),
    stop: () => stopChild(child),
  };
}
