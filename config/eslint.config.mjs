// Lint rules. The import restrictions draw the layers by folder: src/http reaches storage
// only through the domain (src/sessions) and the request-scoped SessionStore; the domain
// never imports storage; only src/storage/index.ts imports a backend folder.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const noFilesystem = (message) => ['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({ name, message }));
const noPaths = (message) => ['path', 'node:path'].map((name) => ({ name, message }));
const backendFolders = {
  group: ['**/storage/*/**', '**/storage/*/*'],
  message: 'Only src/storage/index.ts (openBackend) imports a backend folder.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', 'examples/spa/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: globals.node },
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
  {
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...noFilesystem('HTTP code reaches storage only through req.store.'), ...noPaths('HTTP code never builds a path.')],
          patterns: [{ group: ['**/storage', '**/storage/**'], message: 'HTTP code sees only the domain (src/sessions), never storage.' }],
        },
      ],
    },
  },
  {
    files: ['src/sessions/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...noFilesystem('The domain knows no filesystem: it reaches storage through its ports.'), ...noPaths('The domain never builds a path.')],
          patterns: [{ group: ['**/storage', '**/storage/**'], message: 'The domain never imports storage: backends implement its ports.' }],
        },
      ],
    },
  },
);
