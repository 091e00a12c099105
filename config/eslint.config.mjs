// Lint rules. The import restriction on src/http is what keeps routers away from the
// filesystem: storage is reachable only through the request-scoped SessionStore.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

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
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'fs', message: 'HTTP code reaches storage only through req.store.' },
            { name: 'node:fs', message: 'HTTP code reaches storage only through req.store.' },
            { name: 'fs/promises', message: 'HTTP code reaches storage only through req.store.' },
            { name: 'node:fs/promises', message: 'HTTP code reaches storage only through req.store.' },
            { name: 'path', message: 'HTTP code never builds a path.' },
            { name: 'node:path', message: 'HTTP code never builds a path.' },
          ],
          patterns: [
            {
              group: ['**/storage/*', '!**/storage/session-store'],
              message: 'HTTP code sees only the SessionStore facade, never storage internals.',
            },
          ],
        },
      ],
    },
  },
);
