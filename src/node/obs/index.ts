// Observability plumbing of the wiring: structured logs (pino) and the
// OpenTelemetry context manager the log lines and spans share.
export { createLogger, lineLog, levelOf, prettyLine } from "./logger.js";
export type { LoggerOptions } from "./logger.js";
export { enableContext } from "./context.js";
export { TRACEPARENT, childSpan, contextOf, startTracing, traceparentOf, tracer, tracingOn, tracingOptionsFromEnv } from "./tracing.js";
export type { TracingOptions } from "./tracing.js";
