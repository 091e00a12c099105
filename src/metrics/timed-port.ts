/**
 * The storage decorator: wraps a port (MetadataBackend, BlobStore) so that every method call
 * is timed as `<port>.<method>`, whatever backend is behind it. One place, not a timer in
 * each backend; the label is a method name, so it is bounded.
 */
import type { MetricsRecorder } from './recorder';

export function timedPort<T extends object>(port: T, portName: string, metrics: MetricsRecorder): T {
  const wrapped = new Map<string | symbol, unknown>();
  return new Proxy(port, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let timed = wrapped.get(property);
      if (timed === undefined) {
        const operation = `${portName}.${property}`;
        const method = value as (...args: unknown[]) => unknown;
        timed = (...args: unknown[]) => {
          const started = performance.now();
          const done = (outcome: 'ok' | 'error') => metrics.storageOperation(operation, outcome, (performance.now() - started) / 1000);
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            done('error');
            throw error;
          }
          if (result instanceof Promise) {
            return result.then(
              (resolved: unknown) => {
                done('ok');
                return resolved;
              },
              (error: unknown) => {
                done('error');
                throw error;
              },
            );
          }
          done('ok');
          return result;
        };
        wrapped.set(property, timed);
      }
      return timed;
    },
  });
}
