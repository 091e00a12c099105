/**
 * The storage timer: every method call on a port is timed as `<port>.<method>`, whatever
 * backend is behind it. One place, not a timer in each backend; the label is a method name,
 * so it is bounded.
 */
import { wrapPortMethods } from '../sessions/port-decorator';
import type { MetricsRecorder } from './recorder';

const runDirectly = (call: () => unknown): unknown => call();

export function timedPort<T extends object>(port: T, portName: string, metrics: MetricsRecorder): T {
  return wrapPortMethods(port, (method) => {
    const operation = `${portName}.${method}`;
    return () => {
      const started = performance.now();
      return {
        run: runDirectly,
        end: (failure) => metrics.storageOperation(operation, failure ? 'error' : 'ok', (performance.now() - started) / 1000),
      };
    };
  });
}
