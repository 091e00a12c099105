/**
 * How many downloads (or uploads) one user may have in progress at once. A transfer holds
 * a file descriptor and buffers for as long as its client keeps it open; without a cap, one
 * user's stalled clients could hold the process's descriptors and memory for everyone.
 * Counted in this process (one process owns a data directory).
 */
import type { Response } from 'express';
import { TooManyRequests } from '../errors';

export class TransferSlots {
  private readonly active = new Map<string, number>();

  constructor(
    private readonly what: 'downloads' | 'uploads',
    private readonly max: number,
    private readonly variable: string,
  ) {}

  /** Takes one of the user's slots until the response closes (finished or cut); 429 when none is free. */
  take(userId: string, res: Response): void {
    const inUse = this.active.get(userId) ?? 0;
    if (inUse >= this.max) {
      throw new TooManyRequests(`At most ${this.max} ${this.what} per user at once; wait for one to finish.`, 1, { limit: this.variable });
    }
    this.active.set(userId, inUse + 1);
    res.once('close', () => {
      const left = (this.active.get(userId) ?? 1) - 1;
      if (left === 0) this.active.delete(userId);
      else this.active.set(userId, left);
    });
  }
}
