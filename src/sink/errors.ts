// Failures of a sink flush, classified once so the sink machine can decide:
// retry soon, retry after a grace period (a timed-out INSERT may still be
// queued), or report itself degraded (the server rejects the batch).
import { ClickhouseQueryError, ClickhouseUnavailableError } from "../clickhouse/index.js";
import { TaggedError } from "../../protocols/tagged.js";

export type FlushFailureKind = "unavailable" | "timeout" | "rejected" | "internal";

/** A flush attempt failed; carries what the next attempt must know. */
export class SinkFlushError extends TaggedError("SinkFlushError") {
  constructor(
    message: string,
    readonly kind: FlushFailureKind,
    /** Rows of this attempt may be in ClickHouse: the next attempt must ask what landed. */
    readonly mayHaveLanded: boolean,
    /** INSERTs that may still run on the server: wait for them to finish before asking. */
    readonly queryIds: readonly string[],
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface FailureInfo {
  readonly message: string;
  readonly kind: FlushFailureKind;
  readonly mayHaveLanded: boolean;
  readonly queryIds: readonly string[];
  readonly retryable: boolean;
}

const TIMEOUT_CODES = new Set(["ETIMEDOUT", "TIMEOUT"]);

/** What the machine needs to know of any error a flush rejected with. */
export function describeFailure(err: unknown): FailureInfo {
  if (err instanceof SinkFlushError) {
    return { message: err.message, kind: err.kind, mayHaveLanded: err.mayHaveLanded, queryIds: err.queryIds, retryable: err.retryable };
  }
  if (err instanceof ClickhouseUnavailableError) {
    return {
      message: err.message,
      kind: TIMEOUT_CODES.has(err.code) ? "timeout" : "unavailable",
      mayHaveLanded: err.mayHaveLanded,
      queryIds: err.queryId === undefined ? [] : [err.queryId],
      retryable: true,
    };
  }
  if (err instanceof ClickhouseQueryError) {
    return { message: err.message, kind: "rejected", mayHaveLanded: true, queryIds: err.queryId === undefined ? [] : [err.queryId], retryable: err.retryable };
  }
  // Unknown: assume the worst about what landed, and that trying again may help.
  const message = err instanceof Error ? err.message : String(err);
  return { message, kind: "internal", mayHaveLanded: true, queryIds: [], retryable: true };
}

/**
 * Wraps an error of INSERT number `failedInsert` of a flush. Earlier INSERTs
 * of the same attempt succeeded, so rows may have landed even when the failed
 * one certainly did not.
 */
export function flushFailure(err: unknown, insertsDone: number, what: string): SinkFlushError {
  const info = describeFailure(err);
  return new SinkFlushError(`${what}: ${info.message}`, info.kind, info.mayHaveLanded || insertsDone > 0, info.queryIds, info.retryable, { cause: err });
}
