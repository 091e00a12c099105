/**
 * prom-client's default metrics (process CPU, memory, heap, handles, file descriptors,
 * event-loop lag, Node version), all but its GC histogram. That one observes every garbage
 * collection through a PerformanceObserver, which makes each of them cost more: an
 * allocation-heavy loop ran 27% slower with it, and the service collects garbage for about a
 * tenth of each request. Every other collector works at scrape time or on a 10 ms timer.
 * prom-client has no option to leave one out, so its collectors are registered one by one
 * (the package is pinned, and these are its own files).
 */
import type { Registry } from 'prom-client';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap';
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal';
import processHandles from 'prom-client/lib/metrics/processHandles';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors';
import processRequests from 'prom-client/lib/metrics/processRequests';
import processResources from 'prom-client/lib/metrics/processResources';
import processStartTime from 'prom-client/lib/metrics/processStartTime';
import version from 'prom-client/lib/metrics/version';

const COLLECTORS = [
  processCpuTotal,
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  eventLoopLag,
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
];

export function collectProcessMetrics(registry: Registry): void {
  // The event-loop delay is sampled every 10 ms, prom-client's own default.
  for (const collect of COLLECTORS) collect(registry, { eventLoopMonitoringPrecision: 10 });
}
