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

  it('build a listing summary path beside sessions/, named like the user directory', () => {
    expect(paths.summaryFile('Alice')).toBe('/srv/data/summaries/_41lice.json');
    expect(paths.summaryFile('auth0|42')).toBe('/srv/data/summaries/auth0_7c42.json');
    expect(() => paths.summaryFile('../etc')).toThrow();
    expect(() => paths.summaryFile('..')).toThrow();
  });

  it('build many session directories at once as one at a time would, refusing an invalid id', () => {
    const ids = ['3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e', '9b1d3c4e-2f6a-4b7c-8d9e-0f1a2b3c4d5e'];
    expect(paths.sessionDirs('Alice', ids)).toEqual(ids.map((id) => paths.sessionDir('Alice', id)));
    expect(() => paths.sessionDirs('alice', [ids[0]!, '..'])).toThrow();
  });
});
