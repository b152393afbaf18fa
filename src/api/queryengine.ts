// The query engine as the API sees it. The engine itself (src/query
// ProxistQueryEngine) implements this; the API only validates, streams and
// cancels. Engines must look tables up in `tenant` only (the API passes the
// token's tenant), and refuse a table name qualified with another tenant as
// PERMISSION_DENIED. Engines refuse with protocols/errors.ts QueryError; the
// API maps its code to a gRPC status.
import type { RecordBatch, Schema } from "apache-arrow";
import type { QueryColumns } from "../query/index.js";

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
  run(tenant: string, query: unknown, signal: AbortSignal, caller?: string): AsyncIterable<RecordBatch>;
  /**
   * Optional: runs `query` like run() (the same refusals, quotas and notes)
   * and answers typed columns, for answers that are not Arrow (the HTTP API's
   * JSON): no record batches built only to be read back row by row.
   */
  runColumns?(tenant: string, query: unknown, signal: AbortSignal, caller?: string): Promise<QueryColumns>;
  /** The JSON query that reads a whole table (Flight path descriptors, ListFlights). */
  tableQuery(table: string): unknown;
}
