// The API's one error type and the single place where errors from every layer
// (auth, Arrow checks, limits, gateway nacks, query engine) become gRPC
// statuses. A broker that did not answer is UNAVAILABLE (retry). Unknown errors are logged with a reference and answered INTERNAL
// without their text, so no internal detail (or credential) reaches a client.
import { randomUUID } from "node:crypto";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { StatusObject } from "@grpc/grpc-js";
import { QueryError } from "../../protocols/errors.js";
import { AuthError, TokenStoreUnavailableError } from "../auth/index.js";
import { BatchRejected } from "../codec/arrow.js";
import { IpcError } from "./ipc/index.js";
import { LimitExceeded } from "./limits.js";
import { brokerUnavailable } from "./brokerdown.js";
import { TaggedError } from "../../protocols/tagged.js";

export const API_CODES = [
  "CANCELLED",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "UNAUTHENTICATED",
] as const;
export type ApiCode = (typeof API_CODES)[number];

export class ApiError extends TaggedError("ApiError") {
  constructor(
    readonly code: ApiCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Maps any thrown value to an ApiError by its type; everything unknown is INTERNAL. */
export function classify(e: unknown, log: (line: string) => void): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof AuthError) return new ApiError(e.code, e.message);
  if (e instanceof TokenStoreUnavailableError) return new ApiError("UNAVAILABLE", e.message);
  if (e instanceof QueryError || e instanceof LimitExceeded || e instanceof IpcError || e instanceof BatchRejected) return new ApiError(e.code, e.message);
  const broker = brokerUnavailable(e);
  if (broker !== undefined) return new ApiError("UNAVAILABLE", `the message broker (NATS) did not answer: ${broker}; it may be restarting or electing a leader: retry the call`);
  const ref = randomUUID().slice(0, 8);
  log(`api: internal error ref ${ref}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return new ApiError("INTERNAL", `internal error (ref ${ref}); the server log has the details`);
}

export function toStatus(e: ApiError): Partial<StatusObject> & Error {
  return Object.assign(new Error(e.message), { code: GrpcStatus[e.code], details: e.message });
}
