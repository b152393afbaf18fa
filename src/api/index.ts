// Public surface of src/api: the gRPC + Arrow Flight server, its limits and
// errors, the query-engine interface it serves, and client constructors.
export { startApiServer } from "./server.js";
export type { ApiServer, ApiServerOptions } from "./server.js";
export { DEFAULT_LIMITS, LimitExceeded, resolveLimits } from "./limits.js";
export type { ApiLimits, LimitName } from "./limits.js";
export { ApiError, classify } from "./errors.js";
export type { ApiCode } from "./errors.js";
export { QueryError } from "../../protocols/errors.js";
export type { QueryErrorCode } from "../../protocols/errors.js";
export type { QueryEngine } from "./queryengine.js";
export type { ApiNode, Producer } from "./ingest.js";
export type { CredsIssuer } from "./context.js";
export type { TokenCheck } from "./auth.js";
export { scopedTable } from "./scope.js";
export type { Scope } from "./scope.js";
export type { PutAck } from "./flight/doput.js";
export { AdminClient, FeedsClient, FlightClient, LARGE_READS, ProxistClient, bearer, channelCredentials, speaksTls, tlsHint } from "./client.js";
// The HTTP API of the node (src/node/httpapi) shares these with gRPC and Flight.
export { authorize } from "./auth.js";
export { ingestBatch, producerOf } from "./ingest.js";
export { presentingEngine } from "./presentation.js";
export { checkGranted, checkQueryScope, checkQueryTenant, grantedTables, tableSpec } from "./scope.js";
export { schemaToIpc } from "./arrowout.js";
