/**
 * Group commit: writes to one key that arrive while an earlier write is on its way to disk
 * wait for it, then go to disk together, in arrival order, with one fsync for all of them.
 * Nothing waits on a timer, so a lone write is as fast as before; under load, N writers
 * share one fsync instead of queueing for N. Every caller is answered only after the write
 * that covers its own item is durable, exactly as if it had written alone.
 */

import { fsObserver } from './fs-observer';

/** What `commit` returns for each item of a batch, in the batch's order. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<I, R> {
  item: I;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, R> {
  private readonly queues = new Map<string, Array<Waiting<I, R>>>();

  /**
   * `commit` writes a whole batch; it is never called twice at once for the same key. `name`
   * labels the batch sizes reported to the metrics hook.
   */
  constructor(
    private readonly commit: (key: string, items: I[]) => Promise<Array<Outcome<R>>>,
    private readonly name = 'batch',
  ) {}

  submit(key: string, item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue) {
        queue.push({ item, resolve, reject });
        return;
      }
      this.queues.set(key, [{ item, resolve, reject }]);
      void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    const queue = this.queues.get(key)!;
    while (queue.length > 0) {
      const batch = queue.splice(0);
      fsObserver()?.groupCommitBatch(this.name, batch.length);
      try {
        const outcomes = await this.commit(
          key,
          batch.map((w) => w.item),
        );
        batch.forEach((waiting, i) => {
          const outcome = outcomes[i]!;
          if (outcome.ok) waiting.resolve(outcome.value);
          else waiting.reject(outcome.error);
        });
      } catch (error) {
        for (const waiting of batch) waiting.reject(error);
      }
    }
    this.queues.delete(key);
  }
}
