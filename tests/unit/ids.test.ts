import { isValidObjectId, isValidUserId, newObjectId } from '../../src/sessions/ids';

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

describe('object ids', () => {
  it('are only lower-case UUID v4', () => {
    expect(isValidObjectId('3d6f0a2e-6f0e-4c43-9d7e-1f2a3b4c5d6e')).toBe(true);
    for (const bad of ['3D6F0A2E-6F0E-4C43-9D7E-1F2A3B4C5D6E', '../x', '3d6f0a2e-6f0e-1c43-9d7e-1f2a3b4c5d6e', '', 'a'.repeat(36)]) {
      expect(isValidObjectId(bad)).toBe(false);
    }
  });

  it('are generated fresh and valid', () => {
    const generated = Array.from({ length: 100 }, () => newObjectId());
    expect(generated.every(isValidObjectId)).toBe(true);
    expect(new Set(generated).size).toBe(generated.length);
  });
});
