/**
 * `npm run example`: the service in development mode and the example SPA next to it, with
 * one command. Prints both addresses and a ready-made token; Ctrl-C stops both.
 *
 * PORT (3000) and EXAMPLE_PORT (5173) choose the ports; the service's data stays in ./data.
 * Exit codes: 0 after Ctrl-C, 1 when either could not start (the service is stopped first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTokenMinter } from '../../src/cli/token-minter';
import { buildExample, startExampleServer } from './server';

const HOST = '127.0.0.1';

async function waitUntilReady(apiBase: string, service: { exitCode: number | null }): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (service.exitCode !== null) throw new Error(`the service exited with ${service.exitCode}`);
    try {
      if ((await fetch(`${apiBase}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('the service did not become ready in 30 s');
}

/** Stops the service this command started and waits until it is gone (SIGKILL if it lingers). */
async function stopService(service: ChildProcess): Promise<void> {
  if (service.exitCode !== null || service.signalCode !== null) return;
  const exited = once(service, 'exit');
  service.kill('SIGTERM');
  const timer = setTimeout(() => service.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** A readable line for why the example could not start. */
function reason(error: unknown, examplePort: number): string {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
    return `EXAMPLE_PORT ${examplePort} is in use on ${HOST}; free it or choose another, e.g. EXAMPLE_PORT=5174 npm run example`;
  }
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<void> {
  const apiPort = Number(process.env.PORT ?? 3000);
  const examplePort = Number(process.env.EXAMPLE_PORT ?? 5173);
  const apiBase = `http://${HOST}:${apiPort}`;
  const exampleOrigin = `http://${HOST}:${examplePort}`;
  const environment = { ...process.env, NODE_ENV: 'development', HOST, PORT: String(apiPort), CORS_ORIGINS: exampleOrigin };

  await buildExample();
  const service = spawn(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'server.js')], {
    env: { LOG_FORMAT: 'pretty', ...environment },
    stdio: 'inherit',
  });
  // Whatever ends this command ends the service it started: Ctrl-C, or the example failing to
  // start (a busy EXAMPLE_PORT), which would otherwise leave the service running unseen.
  const stopBoth = (code: number) => void stopService(service).finally(() => process.exit(code));
  process.on('SIGINT', () => stopBoth(0));
  process.on('SIGTERM', () => stopBoth(0));

  let example;
  try {
    await waitUntilReady(apiBase, service);
    // After the service started, so the dev secret it generated is the one used here.
    const minter = await createTokenMinter(environment);
    if (!minter.ok) throw new Error(minter.error);
    example = { server: await startExampleServer({ host: HOST, port: examplePort, apiBase, mintToken: minter.mint }), minter };
  } catch (error) {
    process.stderr.write(`example: ${reason(error, examplePort)}\n`);
    await stopService(service);
    process.stderr.write('example: stopped the service it started\n');
    process.exit(1);
  }
  process.stdout.write(
    [
      '',
      'session-vault example is running',
      `  service:  ${apiBase}   (CORS_ORIGINS=${exampleOrigin})`,
      `  example:  ${example.server.url}`,
      `  token for "alice" (1 hour): ${example.minter.mint('alice')}`,
      '  Open the example, then mint a token there or paste this one. Ctrl-C stops both.',
      '',
    ].join('\n') + '\n',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`example: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
