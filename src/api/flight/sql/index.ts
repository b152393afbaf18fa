// Arrow Flight SQL on Proxist's Flight server: the command decoding, what each
// command asks of the server, and the prepared statement actions.
export { flightSqlCommand, isMetadata, packSql } from "./command.js";
export type { MetadataCommand, SqlCommand } from "./command.js";
export { metadataBatch, refusePut, sqlPlan, sqlQuery } from "./serve.js";
export type { SqlPlan } from "./serve.js";
export { doActionHandler, listActionsHandler } from "./actions.js";
