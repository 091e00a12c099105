import type { SessionDocument } from '../../../src/sessions/ports';
import { DocumentCache } from '../../../src/storage/fs/document-cache';

const doc = (id: string, version = 1): SessionDocument => ({
  id,
  title: id,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  version,
  state: {},
});

describe('DocumentCache', () => {
  it('keeps users apart: the same session id under another user is a miss', () => {
    const cache = new DocumentCache(1000);
    cache.endWrite('alice', 's1', { document: doc('s1'), bytes: 100 });
    expect(cache.get('alice', 's1')).toEqual(doc('s1'));
    expect(cache.get('bob', 's1')).toBeUndefined();
  });

  it('stays within its byte budget, evicting the least recently used first', () => {
    const cache = new DocumentCache(300);
    cache.endWrite('u', 'a', { document: doc('a'), bytes: 100 });
    cache.endWrite('u', 'b', { document: doc('b'), bytes: 100 });
    cache.endWrite('u', 'c', { document: doc('c'), bytes: 100 });
    cache.get('u', 'a');
    cache.endWrite('u', 'd', { document: doc('d'), bytes: 100 });
    expect(cache.get('u', 'b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((id) => cache.get('u', id)?.id)).toEqual(['a', 'c', 'd']);
    cache.endWrite('u', 'huge', { document: doc('huge'), bytes: 301 });
    expect(cache.get('u', 'huge')).toBeUndefined();
  });

  it('refuses a fill from a read that a write overtook, so a replaced document never comes back', () => {
    const cache = new DocumentCache(1000);
    const beforeWrite = cache.ticket();
    cache.beginWrite('u', 's');
    cache.endWrite('u', 's', { document: doc('s', 2), bytes: 100 });
    cache.fill('u', 's', doc('s', 1), 100, beforeWrite);
    expect(cache.get('u', 's')?.version).toBe(2);

    // A read that started while a write was under way is refused too.
    cache.beginWrite('u', 't');
    const duringWrite = cache.ticket();
    cache.endWrite('u', 't');
    cache.fill('u', 't', doc('t', 1), 100, duringWrite);
    expect(cache.get('u', 't')).toBeUndefined();

    const quiet = cache.ticket();
    cache.fill('u', 't', doc('t', 3), 100, quiet);
    expect(cache.get('u', 't')?.version).toBe(3);
  });

  it('forgets a deleted session and everything of an erased user', () => {
    const cache = new DocumentCache(1000);
    cache.endWrite('alice', 'a', { document: doc('a'), bytes: 10 });
    cache.endWrite('alice', 'b', { document: doc('b'), bytes: 10 });
    cache.endWrite('alicex', 'c', { document: doc('c'), bytes: 10 });
    cache.beginWrite('alice', 'a');
    cache.endWrite('alice', 'a');
    expect(cache.get('alice', 'a')).toBeUndefined();
    cache.dropUser('alice');
    expect(cache.get('alice', 'b')).toBeUndefined();
    expect(cache.get('alicex', 'c')?.id).toBe('c');
  });
});
