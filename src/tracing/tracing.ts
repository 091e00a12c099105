/**
 * What the service asks of tracing, with no OpenTelemetry type in it: the app, the startup
 * and the logger take this interface, and only open-telemetry.ts (loaded with
 * OTEL_EXPORTER_OTLP_ENDPOINT set) implements it, so with tracing off no OpenTelemetry
 * module is ever loaded.
 */
import type { RequestHandler } from 'express';

export interface Tracing {
  /** The request's span (kind server), active for everything the request does; after the request id. */
  requestSpan(): RequestHandler;
  /** Runs the authentication middleware in a child span of the request's. */
  authSpan(authenticate: RequestHandler): RequestHandler;
  /** Wraps a storage port: one span per call, `storage <port>.<method>`. */
  tracedPort<T extends object>(port: T, portName: string): T;
  /** The active span's ids, for log lines; undefined outside a span. */
  logFields(): { trace_id: string; span_id: string } | undefined;
  /** Ends tracing, sending the spans still buffered. */
  shutdown(): Promise<void>;
}
