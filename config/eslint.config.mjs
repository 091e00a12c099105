// Lint rules. The import restrictions draw the layers by folder: src/http reaches storage
// only through the domain (src/sessions) and the request-scoped SessionStore; the domain
// never imports storage; only src/storage/index.ts imports a backend folder.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const backendFolders = {
  group: ['**/storage/*/**', '**/storage/*/*'],
  message: 'Only src/storage/index.ts (openBackend) imports a backend folder.',
};

/** No filesystem, no path building, nothing under src/storage. */
const neverStorage = (message) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: ['fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'path', 'node:path'].map((name) => ({ name, message })),
      patterns: [{ group: ['**/storage', '**/storage/**'], message }],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', 'examples/spa/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // CommonJS files (preloads given to `node --require`) load what they need with require().
    files: ['**/*.cjs'],
    languageOptions: { globals: globals.node, sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Only the switch in src/storage/index.ts opens a backend; check-data is the filesystem
    // backend's own tool.
    files: ['src/**/*.ts'],
    ignores: ['src/storage/**', 'src/http/**', 'src/sessions/**', 'src/cli/check-data.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [backendFolders] }],
    },
  },
  { files: ['src/http/**/*.ts'], rules: neverStorage('HTTP code reaches storage only through the domain (req.store).') },
  { files: ['src/sessions/**/*.ts'], rules: neverStorage('The domain reaches storage only through its ports; backends implement them.') },
);
