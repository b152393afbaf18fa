// Typed protocol errors. Messages name the input, the rule and the fix.
import { TaggedError } from "./tagged.js";

export class UnsupportedVersionError extends TaggedError("UnsupportedVersionError") {
  constructor(what: string, got: number, supported: readonly number[]) {
    super(`${what} has version ${got}; this reader supports ${supported.join(", ")}. Upgrade the reader or write version ${supported.at(-1)}`);
  }
}

export class CorruptMessageError extends TaggedError("CorruptMessageError") {
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super(`${what} cannot be decoded: ${detail}`, options);
  }
}

/** The kinds of query failure, named as the gRPC statuses the API answers them with. */
export const QUERY_ERROR_CODES = ["INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "UNAVAILABLE", "DEADLINE_EXCEEDED"] as const;
export type QueryErrorCode = (typeof QUERY_ERROR_CODES)[number];

/**
 * A query that is refused or cannot be answered: the one error type of query
 * validation (protocols/query.ts), the engine (src/query) and the API's query
 * engine interface (src/api), which maps `code` to a gRPC status.
 */
export class QueryError extends TaggedError("QueryError") {
  constructor(
    readonly code: QueryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A query part refused before it was sent because no single message can carry
 * it: the query's own fault (INVALID_ARGUMENT), which the coordinator must not
 * mistake for a shard owner that did not answer.
 */
export class PartTooLargeError extends QueryError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}
