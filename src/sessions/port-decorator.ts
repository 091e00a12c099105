/**
 * Wraps every method of a storage port (MetadataBackend, BlobStore) so that each call is
 * observed from start to end, whether the method returns a value, throws, or returns a promise
 * that settles later. The metrics timer and the tracing span are both such observers; this is
 * the one place that knows how a port's calls begin and end.
 */

/** One call being observed. */
export interface ObservedCall {
  /** Runs the call; tracing runs it with its span made current. */
  run(call: () => unknown): unknown;
  /** Called once, when the call has returned or its promise has settled; `failure` when it failed. */
  end(failure?: { error: unknown }): void;
}

/**
 * `observe(method)` is asked once per method name and returns what starts an observed call,
 * so per-method work (names, labels) is done once and not per call.
 */
export function wrapPortMethods<T extends object>(port: T, observe: (method: string) => () => ObservedCall): T {
  const wrapped = new Map<string, unknown>();
  return new Proxy(port, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let observed = wrapped.get(property);
      if (observed === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        const begin = observe(property);
        observed = (...args: unknown[]) => {
          const call = begin();
          let result: unknown;
          try {
            result = call.run(() => method.apply(target, args));
          } catch (error) {
            call.end({ error });
            throw error;
          }
          if (!(result instanceof Promise)) {
            call.end();
            return result;
          }
          return result.then(
            (resolved: unknown) => {
              call.end();
              return resolved;
            },
            (error: unknown) => {
              call.end({ error });
              throw error;
            },
          );
        };
        wrapped.set(property, observed);
      }
      return observed;
    },
  });
}
