// The errors a user-defined function ends a query with (QueryError, so the API
// maps them to gRPC statuses): each names the function, what stopped it, the
// limit and the fix.
import { QueryError } from "../../protocols/errors.js";
import { UDF_MAX_LIMITS } from "./limits.js";

/** Which function of which tenant, for messages. */
export interface UdfName {
  readonly tenant: string;
  readonly name: string;
  readonly version: number;
}

const who = (f: UdfName): string => `function ${f.name} (tenant ${f.tenant}, version ${f.version})`;

export const cpuCallError = (f: UdfName, ms: number): QueryError =>
  new QueryError("RESOURCE_EXHAUSTED", `${who(f)} was stopped: one call ran past its CPU-time limit of ${ms} ms per call (limits.cpuMsPerCall); the query ended. Make the function cheaper per row, or raise limits.cpuMsPerCall in the tenant spec (cap ${UDF_MAX_LIMITS.cpuMsPerCall}) and apply it`);

export const cpuQueryError = (f: UdfName, ms: number): QueryError =>
  new QueryError("RESOURCE_EXHAUSTED", `${who(f)} was stopped: its calls in this query ran past its CPU-time limit of ${ms} ms per query (limits.cpuMsPerQuery); the query ended. Narrow the query (fewer symbols, a shorter range), or raise limits.cpuMsPerQuery in the tenant spec (cap ${UDF_MAX_LIMITS.cpuMsPerQuery}) and apply it`);

export const memoryError = (f: UdfName, bytes: number, what: string): QueryError =>
  new QueryError("RESOURCE_EXHAUSTED", `${who(f)} was stopped: ${what} within its memory limit of ${bytes} bytes (limits.memoryBytes); the query ended. Keep less state in the function, or raise limits.memoryBytes in the tenant spec (cap ${UDF_MAX_LIMITS.memoryBytes}) and apply it`);

export const threwError = (f: UdfName, detail: string): QueryError =>
  new QueryError("FAILED_PRECONDITION", `${who(f)} threw: ${detail}; the query ended. Fix the function and apply it again`);

export const resultError = (f: UdfName, detail: string): QueryError => new QueryError("FAILED_PRECONDITION", `${who(f)} returned ${detail}; the query ended. Fix the function and apply it again`);
