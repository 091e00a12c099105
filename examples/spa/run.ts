/**
 * `npm run example`: the service in development mode and the example SPA next to it, with
 * one command. Prints both addresses and a ready-made token; Ctrl-C stops both.
 *
 * PORT (3000) and EXAMPLE_PORT (5173) choose the ports; the service's data stays in ./data.
 */
import { spawn } from 'node:child_process';
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
  const stop = () => {
    service.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await waitUntilReady(apiBase, service);

  // After the service started, so the dev secret it generated is the one used here.
  const minter = await createTokenMinter(environment);
  if (!minter.ok) throw new Error(minter.error);
  const example = await startExampleServer({ host: HOST, port: examplePort, apiBase, mintToken: minter.mint });
  process.stdout.write(
    [
      '',
      'session-vault example is running',
      `  service:  ${apiBase}   (CORS_ORIGINS=${exampleOrigin})`,
      `  example:  ${example.url}`,
      `  token for "alice" (1 hour): ${minter.mint('alice')}`,
      '  Open the example, then mint a token there or paste this one. Ctrl-C stops both.',
      '',
    ].join('\n') + '\n',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`example: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
