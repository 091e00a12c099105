/** The lint rules that draw the layers by folder exist and bite. */
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

/** How many of `imports` the rules refuse in a file at `file`. */
async function refused(file: string, imports: string[]): Promise<number> {
  const names = imports.map((_, i) => `m${i}`);
  const code = `${imports.map((from, i) => `import * as ${names[i]} from '${from}';`).join('\n')}\nexport const used = [${names.join(', ')}];\n`;
  return (await lintAs(file, code)).filter((m) => m.startsWith('no-restricted-imports:')).length;
}

describe('import boundaries', () => {
  it('a router may not import the filesystem, path, or anything under storage', async () => {
    const forbidden = ['node:fs/promises', 'fs', 'node:path', '../../storage', '../../storage/fs/fs-backend', '../../storage/fs/paths', '../../storage/opened-storage'];
    expect(await refused('src/http/routes/example.ts', forbidden)).toBe(forbidden.length);
  });

  it('a router may import the domain', async () => {
    expect(await refused('src/http/routes/example.ts', ['../../sessions/session-store', '../../sessions/ids', '../../errors'])).toBe(0);
  });

  it('the domain may not import storage or the filesystem', async () => {
    const forbidden = ['../storage', '../storage/fs/paths', '../storage/fs/durable-fs', 'node:fs', 'node:path'];
    expect(await refused('src/sessions/example.ts', forbidden)).toBe(forbidden.length);
    expect(await refused('src/sessions/example.ts', ['./ports', '../errors', 'node:crypto'])).toBe(0);
  });

  it('only src/storage/index.ts imports a backend folder', async () => {
    expect(await refused('src/startup.ts', ['./storage/fs/open'])).toBe(1);
    expect(await refused('src/auth/example.ts', ['../storage/fs/paths'])).toBe(1);
    expect(await refused('src/startup.ts', ['./storage'])).toBe(0);
    expect(await refused('src/storage/index.ts', ['./fs/open'])).toBe(0);
    expect(await refused('src/storage/fs/example.ts', ['node:fs', './paths', '../../sessions/ports'])).toBe(0);
  });
});
