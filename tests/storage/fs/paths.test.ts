import { isValidUserId } from '../../../src/sessions/ids';
import { DataPaths, userDirectoryName } from '../../../src/storage/fs/paths';

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

describe('session paths', () => {
  const paths = new DataPaths('/srv/data');

  it('build session paths inside the user directory only', () => {
    expect(paths.sessionDir('alice', '3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toBe(
      '/srv/data/sessions/alice/3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e',
    );
    expect(() => paths.sessionDir('alice', '..')).toThrow();
    expect(() => paths.sessionDir('..', '3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toThrow();
    expect(() => new DataPaths('relative/dir')).toThrow();
  });
});
