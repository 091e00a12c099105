// prom-client's default collectors, one file each (the package ships types for its index only).
// Each registers its metrics in the registry and keeps them current.
declare module 'prom-client/lib/metrics/*' {
  import type { Registry } from 'prom-client';
  const collect: (registry: Registry, config: { eventLoopMonitoringPrecision?: number }) => void;
  export = collect;
}
