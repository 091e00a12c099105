import type { BlobStore, MetadataBackend } from '../../src/sessions/ports';
import { CursorCodec } from '../../src/sessions/listing-cursor';
import { SessionStore, type StoreContext } from '../../src/sessions/session-store';

const context: StoreContext = {
  backend: {} as MetadataBackend,
  blobs: {} as BlobStore,
  limits: { stateBytes: 1024, messageBytes: 1024, bytes: 1 << 20, sessions: 10, uploadBytes: 1024, filesPerUpload: 2, filesPerSession: 5, uploadTypes: ['text/plain'] },
  now: () => new Date(),
  cursors: new CursorCodec(Buffer.alloc(32, 1)),
};

describe('SessionStore construction', () => {
  it.each([
    ['missing', undefined],
    ['null', null],
    ['empty', ''],
    ['dot-dot', '..'],
    ['a path', 'a/b'],
    ['NUL', 'a\u0000'],
    ['a number', 42],
    ['too long', 'a'.repeat(65)],
  ])('throws for a %s user id: there is no fallback user', (_name, userId) => {
    expect(() => new SessionStore(userId, context)).toThrow('SessionStore requires a valid user id');
  });

  it('binds a valid user id for its whole life', () => {
    const store = new SessionStore('alice', context);
    expect(store.userId).toBe('alice');
    expect(() => {
      (store as unknown as { userId: string }).userId = 'bob';
    }).toThrow(TypeError);
    expect(store.userId).toBe('alice');
  });
});
