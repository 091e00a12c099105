import { DataPaths, isValidObjectId, isValidUserId, userDirectoryName } from '../../src/storage/paths';

describe('the user-id rule', () => {
  it.each(['alice', 'auth0|5f7c8ec7c33c6c004bbafe82', 'google-oauth2|1234567890', 'a.b+c@example.com', 'A'.repeat(64), 'x', '3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e'])(
    'accepts %s',
    (id) => expect(isValidUserId(id)).toBe(true),
  );

  it.each([
    ['empty', ''],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['only dots', '....'],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['NUL', 'a\u0000b'],
    ['newline', 'a\nb'],
    ['tab', 'a\tb'],
    ['space', 'a b'],
    ['65 characters', 'a'.repeat(65)],
    ['5,000 characters', 'a'.repeat(5000)],
    ['non-ASCII', 'résumé'],
  ])('refuses %s', (_name, id) => expect(isValidUserId(id)).toBe(false));

  it.each([undefined, null, 42, {}, ['alice']])('refuses the non-string %p', (id) => {
    expect(isValidUserId(id)).toBe(false);
  });
});

describe('user directory names', () => {
  it('never collide: ids differing only in case or escape-like text get different names', () => {
    const ids = ['Alice', 'alice', 'ALICE', 'a_41lice', '_41lice', 'a.b', 'a_2eb', 'a|b', 'a:b', 'x@y', 'x_40y'];
    const names = ids.filter(isValidUserId).map(userDirectoryName);
    expect(new Set(names).size).toBe(names.length);
  });

  it('are safe path components in lower case', () => {
    for (const id of ['Alice', '..a', 'a.', 'auth0|x', 'A'.repeat(64)]) {
      const name = userDirectoryName(id);
      expect(name).toMatch(/^[a-z0-9_-]+$/);
      expect(name.length).toBeLessThanOrEqual(255);
    }
  });

  it('refuse to encode an invalid id', () => {
    expect(() => userDirectoryName('../etc')).toThrow();
  });
});

describe('object ids and paths', () => {
  const paths = new DataPaths('/srv/data');

  it('accept only lower-case UUID v4', () => {
    expect(isValidObjectId('3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toBe(true);
    for (const bad of ['3D6F0A2E-6F0E-4C43-9D7E-1F2A3B4C5D6E', '../x', '3d6f0a2e-6f0e-1c43-9d7e-1f2a3b4c5d6e', '', 'a'.repeat(36)]) {
      expect(isValidObjectId(bad)).toBe(false);
    }
  });

  it('build session paths inside the user directory only', () => {
    expect(paths.sessionDir('alice', '3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toBe(
      '/srv/data/sessions/alice/3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e',
    );
    expect(() => paths.sessionDir('alice', '..')).toThrow();
    expect(() => paths.sessionDir('..', '3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toThrow();
    expect(() => new DataPaths('relative/dir')).toThrow();
  });
});
