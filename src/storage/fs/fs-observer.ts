/**
 * The filesystem backend's metrics hook: durable writes, append fsyncs and group-commit
 * batches happen deep inside it, in module functions that have no object to carry a
 * recorder. One process opens at most one filesystem backend, so the hook is set once, at
 * startup, before the backend opens; unset (METRICS off), each site costs one check.
 */
import type { FsObserver } from '../../metrics/recorder';

let current: FsObserver | undefined;

export function observeFs(observer: FsObserver | undefined): void {
  current = observer;
}

export function fsObserver(): FsObserver | undefined {
  return current;
}

/** Seconds since `started` (a performance.now() reading). */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
