// The query engine as the API sees it. The engine itself (src/query, issue 5)
// implements this; the API only validates, streams and cancels. Engines must
// look tables up in `tenant` only (the API passes the token's tenant) and
// resolve every table name of a query with scopedTable({ tenant }, [name]), so
// a name qualified with another tenant is PERMISSION_DENIED.
import type { RecordBatch, Schema } from "apache-arrow";
import { TaggedError } from "../../protocols/tagged.js";

export type QueryErrorCode = "INVALID_ARGUMENT" | "NOT_FOUND" | "PERMISSION_DENIED" | "RESOURCE_EXHAUSTED" | "FAILED_PRECONDITION" | "UNAVAILABLE" | "DEADLINE_EXCEEDED";

/** A query the engine refuses or cannot answer; `message` names the problem and the fix. */
export class QueryError extends TaggedError("QueryError") {
  constructor(
    readonly code: QueryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface QueryEngine {
  /**
   * Validates `query` (its JSON form) for `tenant` and returns the schema of
   * its result without reading data. Throws QueryError.
   */
  schema(tenant: string, query: unknown): Promise<Schema>;
  /**
   * Runs `query`. Batches must have the fields of `schema()` (same names and
   * types). Must stop reading and release its work promptly once `signal`
   * aborts (client cancel or deadline). Throws QueryError for bad queries.
   */
  run(tenant: string, query: unknown, signal: AbortSignal): AsyncIterable<RecordBatch>;
  /** The JSON query that reads a whole table (Flight path descriptors, ListFlights). */
  tableQuery(table: string): unknown;
}
