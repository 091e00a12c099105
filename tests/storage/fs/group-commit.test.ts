import { GroupCommit, type Outcome } from '../../../src/storage/fs/group-commit';

/** A commit function that records its batches and finishes each when told to. */
function recorder() {
  const batches: string[][] = [];
  const finish: Array<() => void> = [];
  const commit = (_key: string, items: string[]) =>
    new Promise<Array<Outcome<string>>>((resolve) => {
      batches.push(items);
      finish.push(() => resolve(items.map((item) => (item.startsWith('bad') ? { ok: false, error: new Error(item) } : { ok: true, value: item.toUpperCase() }))));
    });
  return { batches, finish, group: new GroupCommit<string, string>(commit) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('writes a lone item at once, and items arriving meanwhile together next, in order', async () => {
    const { batches, finish, group } = recorder();
    const first = group.submit('k', 'a');
    await tick();
    expect(batches).toEqual([['a']]);
    const later = ['b', 'c', 'd'].map((item) => group.submit('k', item));
    await tick();
    expect(batches).toHaveLength(1);
    finish[0]!();
    expect(await first).toBe('A');
    await tick();
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
    finish[1]!();
    expect(await Promise.all(later)).toEqual(['B', 'C', 'D']);
  });

  it('answers each item with its own outcome', async () => {
    const { finish, group } = recorder();
    const first = group.submit('k', 'x');
    const good = group.submit('k', 'ok');
    const bad = group.submit('k', 'bad-one');
    await tick();
    finish[0]!();
    await first;
    await tick();
    finish[1]!();
    await expect(good).resolves.toBe('OK');
    await expect(bad).rejects.toThrow('bad-one');
  });

  it('never batches different keys together', async () => {
    const { batches, group } = recorder();
    void group.submit('k1', 'a');
    void group.submit('k2', 'b');
    await tick();
    expect(batches).toEqual([['a'], ['b']]);
  });

  it('fails the whole batch when the write itself fails, and keeps serving the key', async () => {
    let fail = true;
    const group = new GroupCommit<string, string>(async (_key, items) => {
      if (fail) throw new Error('disk full');
      return items.map((value) => ({ ok: true, value }));
    });
    await expect(group.submit('k', 'a')).rejects.toThrow('disk full');
    fail = false;
    await expect(group.submit('k', 'b')).resolves.toBe('b');
  });
});
