// User-defined functions (issue 17): sandboxes, apply-time checks, the node's host.
export { stampFunctions, functionProblems } from "./apply.js";
export { FunctionLoadError, LoadedFunction, functionHash } from "./function.js";
export { UdfHost, UdfSession } from "./host.js";
export type { UdfHostOptions } from "./host.js";
export { UDF_BATCH_ROWS, UDF_DEFAULT_LIMITS, UDF_MAX_LIMITS, limitsOf } from "./limits.js";
export type { UdfLimits } from "./limits.js";
export { JsSandbox, SandboxError } from "./sandbox.js";
