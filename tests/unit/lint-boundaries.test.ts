/** The lint rule that keeps routers away from the filesystem exists and bites. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/** Runs the project's ESLint (as `npm run lint` does) on code placed at `file`. */
async function lintAs(file: string, code: string): Promise<string[]> {
  const result = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--config', 'config/eslint.config.mjs', '--format', 'json', '--stdin', '--stdin-filename', file],
    { cwd: root, input: code, encoding: 'utf8' },
  );
  const [report] = JSON.parse(result.stdout) as Array<{ messages: Array<{ ruleId: string; message: string }> }>;
  return (report?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

const FORBIDDEN_IN_HTTP = [
  "import { readFile } from 'node:fs/promises';",
  "import fs from 'fs';",
  "import path from 'node:path';",
  "import { FsBackend } from '../../storage/fs-backend';",
  "import { DataPaths } from '../../storage/paths';",
];

describe('import boundaries of src/http', () => {
  it('refuse the filesystem, path and storage internals in a router', async () => {
    const code = `${FORBIDDEN_IN_HTTP.join('\n')}\nexport const used = [readFile, fs, path, FsBackend, DataPaths];\n`;
    const messages = await lintAs('src/http/routes/example.ts', code);
    expect(messages.filter((m) => m.startsWith('no-restricted-imports:'))).toHaveLength(FORBIDDEN_IN_HTTP.length);
  });

  it('allow the SessionStore facade in a router, and fs in storage', async () => {
    expect(await lintAs('src/http/routes/example.ts', "import { etagOf } from '../../storage/session-store';\nexport const e = etagOf;\n")).toEqual([]);
    expect(await lintAs('src/storage/example.ts', "import { promises } from 'node:fs';\nexport const p = promises;\n")).toEqual([]);
  });
});
