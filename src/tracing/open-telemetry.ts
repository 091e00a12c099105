/**
 * Tracing on OpenTelemetry, loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set. Spans go
 * to that endpoint over OTLP/HTTP (the exporter reads the standard OTEL_EXPORTER_OTLP_*
 * variables itself), batched; the service name is OTEL_SERVICE_NAME. Every span carries the
 * request id (`request.id`), never a user id or session id.
 */
import { context, createContextKey, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { RequestHandler } from 'express';
import { Unauthorized } from '../errors';
import { routePattern } from '../http/request-end';
import { onResponseEnd } from '../http/response-end';
import { authFailureClass } from '../metrics/auth-failure-class';
import { wrapPortMethods } from '../sessions/port-decorator';
import type { Tracing } from './tracing';

const REQUEST_ID = createContextKey('session-vault request id');

export interface TracingOptions {
  serviceName: string;
  /** Where finished spans go; by default a batch processor in front of the OTLP/HTTP exporter. */
  processor?: SpanProcessor;
}

export function createTracing(options: TracingOptions): Tracing {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [options.processor ?? new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // The AsyncLocalStorage context manager and W3C propagation, process-wide.
  provider.register();
  const tracer = provider.getTracer('session-vault');

  const endWithStatus = (span: Span, error: unknown) => {
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };

  return {
    requestSpan(): RequestHandler {
      return (req, res, next) => {
        const span = tracer.startSpan(req.method, {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': req.method, 'request.id': req.requestId },
        });
        onResponseEnd(res, () => {
          const route = routePattern(req);
          span.updateName(`${req.method} ${route}`);
          span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          if (!res.writableFinished) span.setAttribute('session_vault.aborted', true);
          span.end();
        });
        context.with(trace.setSpan(context.active(), span).setValue(REQUEST_ID, req.requestId), next);
      };
    },

    authSpan(authenticate: RequestHandler): RequestHandler {
      return (req, res, next) => {
        const parent = context.active();
        const span = tracer.startSpan('auth', { attributes: { 'request.id': req.requestId } }, parent);
        context.with(trace.setSpan(parent, span), () =>
          authenticate(req, res, (error?: unknown) => {
            if (error instanceof Unauthorized) span.setAttribute('auth.failure', authFailureClass(error.reason));
            endWithStatus(span, error);
            // The rest of the chain runs in the request's span, not under auth.
            context.with(parent, () => next(error));
          }),
        );
      };
    },

    tracedPort<T extends object>(port: T, portName: string): T {
      return wrapPortMethods(port, (method) => {
        const name = `storage ${portName}.${method}`;
        return () => {
          const active = context.active();
          const requestId = active.getValue(REQUEST_ID);
          const span = tracer.startSpan(name, { attributes: typeof requestId === 'string' ? { 'request.id': requestId } : {} }, active);
          return {
            run: (call) => context.with(trace.setSpan(active, span), call),
            end: (failure) => {
              if (failure) span.setStatus({ code: SpanStatusCode.ERROR });
              span.end();
            },
          };
        };
      });
    },

    logFields() {
      const span = trace.getSpan(context.active());
      if (!span) return undefined;
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },

    shutdown: () => provider.shutdown(),
  };
}
