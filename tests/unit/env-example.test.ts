/**
 * `.env.example` lists exactly the variables the service reads (CONFIG_VARIABLES), each once,
 * so it cannot drift from the configuration schema; and every default it shows is one the
 * configuration accepts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';

const lines = readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8').split('\n');
/** `# NAME=value` (commented out, as shipped) or `NAME=value`. */
const entries = lines
  .map((line) => /^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
  .filter((match): match is RegExpExecArray => match !== null)
  .map((match) => ({ name: match[1]!, value: match[2]! }));

it('lists every configuration variable exactly once, and nothing else', () => {
  const names = entries.map((e) => e.name);
  expect(new Set(names).size).toBe(names.length);
  expect([...names].sort()).toEqual([...CONFIG_VARIABLES].sort());
});

it('shows defaults the configuration accepts', () => {
  const env: Record<string, string> = {};
  // A placeholder (`<DATA_DIR>/...`) is not a literal value.
  for (const { name, value } of entries) if (!value.startsWith('<')) env[name] = value;
  const loaded = loadConfig(env);
  expect(loaded.ok ? [] : loaded.errors).toEqual([]);
});
