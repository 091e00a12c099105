/**
 * deploy/compose.yaml checked without a Docker engine: every variable given to the service is
 * one it reads, and together they make a valid production configuration on PostgreSQL, S3
 * and Redis; every ${VAR} has a value in .env.example; the service runs the image as the
 * Dockerfile builds it (no entrypoint, command or healthcheck of its own: the image's tini
 * entrypoint stays PID 1); the proxy reaches the replicas on the image's port, keeping idle
 * upstream connections for less time than the service does; the app role is not the one that
 * owns the tables; a replica is given longer to stop than it takes to drain, and the image's
 * default drain fits in Docker's default stop grace (10 s).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';

const ROOT = path.join(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  entrypoint?: unknown;
  init?: boolean;
  command?: unknown;
  healthcheck?: unknown;
  volumes?: string[];
  deploy?: { replicas?: number };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
}

const composeText = read('deploy/compose.yaml');
const compose = parse(composeText) as { services: Record<string, Service> };
const vault = compose.services.vault!;

/** deploy/.env.example as the operator's copy would be, before they change the values. */
const dotEnv = Object.fromEntries(
  read('deploy/.env.example')
    .split('\n')
    .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);

/** Compose's interpolation: ${VAR}, ${VAR:?message}, $$ for a literal dollar. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    const found = dotEnv[name!];
    if (found === undefined) throw new Error(`\${${name}} has no value in deploy/.env.example`);
    return found;
  });
}

/** The runtime stage's ENV line of the Dockerfile. */
function imageEnv(): Record<string, string> {
  const dockerfile = read('Dockerfile');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const line = runtime.split('\n').find((l) => l.startsWith('ENV '))!;
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

test('every ${VAR} in the compose file has a value in deploy/.env.example', () => {
  const used = [...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
  expect(used.length).toBeGreaterThan(0);
  expect(used.filter((name) => !(name in dotEnv))).toEqual([]);
});

test("every variable given to the service is one it reads, and they make a valid production configuration on postgres, S3 and Redis", () => {
  const environment = vault.environment ?? {};
  expect(Object.keys(environment).filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  const env = { ...imageEnv(), ...Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, interpolate(String(v))])) };
  const loaded = loadConfig(env);
  expect(loaded.ok ? [] : loaded.errors).toEqual([]);
  if (!loaded.ok) return;
  expect(loaded.config.production).toBe(true);
  expect(loaded.config.storage).toMatchObject({ backend: 'postgres', blobs: { store: 's3', s3: { createBucket: false } } });
  expect(loaded.config.trustProxy).toBe(1);
});

test('the service runs the image as the Dockerfile builds it, as several replicas with no local volume', () => {
  expect(vault.build).toEqual({ context: '..', dockerfile: 'Dockerfile' });
  // The Dockerfile's ENTRYPOINT (tini as PID 1), CMD and HEALTHCHECK apply unchanged.
  expect(vault.entrypoint).toBeUndefined();
  expect(vault.command).toBeUndefined();
  expect(vault.healthcheck).toBeUndefined();
  expect(vault.init).toBeUndefined();
  expect(read('Dockerfile')).toMatch(/^HEALTHCHECK .*\/healthz/m);
  expect(read('Dockerfile')).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
  expect(vault.volumes).toBeUndefined();
  expect(vault.deploy?.replicas).toBeGreaterThanOrEqual(2);
  // nginx waits for the image's healthcheck to pass.
  expect(compose.services.nginx?.depends_on?.vault).toEqual({ condition: 'service_healthy' });
});

test("nginx reaches the replicas on the image's port, and closes idle upstream connections before a replica does", () => {
  const nginx = read('deploy/nginx.conf');
  expect(nginx).toMatch(new RegExp(`^\\s*server vault:${imageEnv().PORT};`, 'm'));
  const loaded = loadConfig({ ...imageEnv(), ...Object.fromEntries(Object.entries(vault.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))])) });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const upstreamIdle = /^\s*keepalive_timeout (\d+)s;/m.exec(nginx);
  expect(upstreamIdle).not.toBeNull();
  expect(Number(upstreamIdle![1]) * 1000).toBeLessThan(loaded.config.http.keepAliveTimeoutMs);
  expect(compose.services.nginx?.volumes).toContain('./nginx.conf:/etc/nginx/conf.d/default.conf:ro');
});

test('the app role it connects as is made by the init script as neither superuser, BYPASSRLS nor owner; migrations run as the owner', () => {
  const roleOf = (variable: string) => new URL(interpolate(vault.environment![variable]!)).username;
  const app = roleOf('DATABASE_URL');
  const owner = roleOf('DATABASE_MIGRATION_URL');
  expect(app).not.toBe(owner);
  const script = read('deploy/postgres/01-roles.sh');
  expect(script).toMatch(new RegExp(`CREATE ROLE ${app} LOGIN NOSUPERUSER NOBYPASSRLS `));
  expect(script).toMatch(new RegExp(`CREATE DATABASE session_vault OWNER ${owner};`));
  expect(compose.services.postgres?.volumes).toContain('./postgres/01-roles.sh:/docker-entrypoint-initdb.d/01-roles.sh:ro');
});

test('a replica is given longer to stop than its drain takes', () => {
  const loaded = loadConfig({ ...imageEnv(), JWT_SECRET: 'x'.repeat(40) });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const grace = /^(\d+)s$/.exec(vault.stop_grace_period ?? '');
  expect(grace).not.toBeNull();
  expect(Number(grace![1]) * 1000).toBeGreaterThan(loaded.config.shutdownTimeoutMs);
  // `docker stop` without -t (and Docker's default stop grace) gives 10 s.
  expect(loaded.config.shutdownTimeoutMs).toBeLessThan(10_000);
});
