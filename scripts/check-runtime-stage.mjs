#!/usr/bin/env node
/**
 * Checks the Dockerfile's runtime stage without a Docker engine: reads the stage's
 * instructions, then reproduces them in a temporary directory (production dependencies
 * only, the compiled output copied in), starts the service there with the stage's
 * environment under the stage's ENTRYPOINT (tini, Debian's package, which must be installed
 * here too), runs the image's HEALTHCHECK command against it, makes one authenticated
 * request, and stops it with SIGTERM sent to tini. Anything missing from `dependencies`
 * fails here.
 *
 * Usage: node scripts/check-runtime-stage.mjs   (after `npm run build`; needs /usr/bin/tini)
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

// 1. The runtime stage says what the issue of a production image asks of it.
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const stages = dockerfile.split(/^FROM /m).slice(1);
check(stages.length >= 2, 'multi-stage Dockerfile');
const runtime = `FROM ${stages.at(-1)}`;
// Both stages on the current Node LTS, so what is built is what runs.
const NODE_IMAGE = 'node:24-bookworm-slim';
for (const [i, stage] of stages.entries()) {
  const image = stage.split(/\s/)[0];
  check(image === NODE_IMAGE, `stage ${i + 1} is FROM ${NODE_IMAGE} (${image})`);
}
const lines = runtime.split('\n').map((l) => l.trim());
const instruction = (name) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
const env = Object.fromEntries(
  instruction('ENV').flatMap((l) => [...l.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1], m[2].replace(/^"|"$/g, '')])),
);
check(env.NODE_ENV === 'production', 'runtime ENV NODE_ENV=production');
check(env.HOST === '0.0.0.0', 'runtime ENV HOST=0.0.0.0');
const user = instruction('USER').at(-1);
check(user !== undefined && !['root', '0'].includes(user), `runtime runs as a non-root user (${user})`);
check(instruction('VOLUME').some((v) => v.includes(env.DATA_DIR ?? '/app/data')), `DATA_DIR (${env.DATA_DIR}) is a volume`);
check(/chown\s+\S*node\S*\s+\S*\/app\/data/.test(runtime), 'the data directory is owned by the runtime user');
check(instruction('RUN').some((r) => /npm ci\b.*--omit=dev/.test(r)), 'production dependencies only (npm ci --omit=dev)');
check(instruction('COPY').some((c) => /--from=\w+\s+\S*dist/.test(c)), 'the compiled output comes from the build stage');
const healthcheck = instruction('HEALTHCHECK').at(-1) ?? '';
check(/\/healthz/.test(healthcheck), 'HEALTHCHECK probes /healthz');
const cmd = JSON.parse(instruction('CMD').at(-1) ?? '[]');
check(cmd[0] === 'node' && cmd[1] === 'dist/server.js', 'CMD runs node (it drains on SIGTERM itself)');
const TINI = '/usr/bin/tini';
const entrypoint = JSON.parse(instruction('ENTRYPOINT').at(-1) ?? '[]');
check(entrypoint[0] === TINI && entrypoint[1] === '--' && entrypoint.length === 2, `ENTRYPOINT is ["${TINI}", "--"] (PID 1 forwards signals and reaps zombies)`);
check(instruction('RUN').some((r) => /apt-get install\b.*\btini\b/.test(r)), "the runtime stage installs Debian's tini");
check(existsSync(TINI), `${TINI} is installed here, to run the service as the image does (apt-get install tini)`);
// The build stage copies in what `npm run build` runs.
const buildCommand = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.build;
for (const file of buildCommand.match(/scripts\/[\w.-]+/g) ?? []) {
  check(new RegExp(`^COPY\\s+${file.replace('.', '\\.')}\\s`, 'm').test(stages[0]), `the build stage copies ${file} (npm run build runs it)`);
}
const ignored = readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
for (const entry of ['node_modules', '.git', 'data', 'dist']) check(ignored.includes(entry), `.dockerignore lists ${entry}`);

// 2. Reproduce the stage: package files, `npm ci --omit=dev`, the build output.
if (!existsSync(path.join(root, 'dist', 'server.js'))) execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
const app = mkdtempSync(path.join(tmpdir(), 'session-vault-runtime-'));
const dataDir = path.join(app, 'data');
let child;
try {
  cpSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  cpSync(path.join(root, 'package-lock.json'), path.join(app, 'package-lock.json'));
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, stdio: 'inherit' });
  cpSync(path.join(root, 'dist'), path.join(app, 'dist'), { recursive: true });
  for (const devOnly of ['typescript', 'jest', 'tsx', 'supertest']) {
    check(!existsSync(path.join(app, 'node_modules', devOnly)), `no dev dependency ${devOnly} in the runtime tree`);
  }

  // 3. Start it the way the image does, on a free port.
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const secret = randomBytes(48).toString('base64');
  const runtimeEnv = { PATH: process.env.PATH, ...env, PORT: String(port), DATA_DIR: dataDir, JWT_SECRET: secret };
  // Not PID 1 here: as a subreaper tini still reaps what node leaves behind, without warning.
  const [command, ...args] = existsSync(TINI) ? [...entrypoint, ...cmd] : cmd;
  child = spawn(command, args, { cwd: app, env: { ...runtimeEnv, TINI_SUBREAPER: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 20_000;
  while (!output.includes('"listening"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  check(output.includes('"listening"'), 'the service starts from the runtime tree in production mode');
  const parent = readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim();
  check(parent === 'tini', `node runs under tini (the started process is ${parent})`);

  // 4. The image's own HEALTHCHECK command, then readiness and one real request.
  const healthArgs = JSON.parse(healthcheck.replace(/^.*?CMD\s+/, ''));
  let healthy = true;
  try {
    execFileSync(healthArgs[0], healthArgs.slice(1), { cwd: app, env: runtimeEnv, timeout: 5_000 });
  } catch {
    healthy = false;
  }
  check(healthy, 'the HEALTHCHECK command passes');
  const base = `http://127.0.0.1:${port}`;
  check((await fetch(`${base}/readyz`)).status === 200, '/readyz is 200');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'ops-check', exp: Math.floor(Date.now() / 1000) + 60 })}`;
  const token = `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
  const created = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  check(created.status === 201, 'an authenticated request is served (201)');
  check(!output.includes(secret) && !output.includes(token), 'neither the secret nor the token is logged');

  // 5. SIGTERM to PID 1 (tini) reaches node, which drains and exits 0.
  child.kill('SIGTERM');
  const exit = await exited;
  check(exit.code === 0, `SIGTERM exits 0 (got ${JSON.stringify(exit)})`);
  if (failures.length > 0) console.log(output);
} finally {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(app, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`runtime stage check: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log('runtime stage check: all passed');
