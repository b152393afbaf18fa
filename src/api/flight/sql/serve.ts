// What each Flight SQL command asks of the server: the plan GetFlightInfo and
// GetSchema hand out (result schema + ticket), the query a statement ticket
// runs on the shared DoGet path, the tables of metadata tickets, and the
// refusals (writes, parameter binding, commands Proxist does not serve).
import type { RecordBatch, Schema } from "apache-arrow";
import { grantedTables } from "../../scope.js";
import type { Principal } from "../../../auth/index.js";
import { schemaMessage } from "../../arrowout.js";
import type { ApiContext } from "../../context.js";
import { ApiError } from "../../errors.js";
import { encapsulate } from "../../ipc/index.js";
import type { MetadataCommand, SqlCommand } from "./command.js";
import { CATALOGS_SCHEMA, DB_SCHEMAS_SCHEMA, TABLE_TYPES_SCHEMA, catalogsBatch, dbSchemasBatch, tableNames, tableTypesBatch, tablesBatch, tablesSchema } from "./metadata.js";
import { SQL_INFO_SCHEMA, sqlInfoBatch } from "./sqlinfo.js";
import { preparedSql, statementQuery } from "./statement.js";

const encoder = new TextEncoder();

export const INGEST_PATHS =
  "ingest with Flight DoPut on a table path descriptor (pyarrow: FlightDescriptor.for_path(\"trades\")), gRPC Ingest, POST /v1/ingest/<table> (Arrow, JSON lines, CSV, line protocol) or a NATS publisher on px.<tenant>.ingest.<table>";
const SERVED = "it serves CommandStatementQuery, prepared statements (CreatePreparedStatement, CommandPreparedStatementQuery, ClosePreparedStatement), GetSqlInfo, GetCatalogs, GetDbSchemas, GetTables and GetTableTypes";
const WRITES = new Set(["CommandStatementUpdate", "CommandPreparedStatementUpdate", "CommandStatementIngest"]);

/** The refusal of a Flight SQL message Proxist does not serve. */
export function unsupported(message: string): ApiError {
  if (WRITES.has(message)) return new ApiError("UNIMPLEMENTED", `Flight SQL ${message} is refused: Proxist's Flight SQL is read-only; ${INGEST_PATHS}`);
  return new ApiError("UNIMPLEMENTED", `Flight SQL ${message} is not offered by Proxist; ${SERVED}`);
}

const ACTIONS_ONLY = (kind: string) => new ApiError("INVALID_ARGUMENT", `a Flight SQL ${kind} request is an action body; send it with DoAction, not as a descriptor or ticket`);

/** The JSON query of a statement or prepared statement (the same ticket plain DoGet redeems). */
export function sqlQuery(ctx: ApiContext, p: Principal, c: SqlCommand): Record<string, unknown> {
  switch (c.kind) {
    case "statement":
      return statementQuery(ctx.node.catalog(), p, c.sql);
    case "prepared":
      return statementQuery(ctx.node.catalog(), p, preparedSql(c.handle));
    case "unsupported":
      throw unsupported(c.message);
    case "createPrepared":
    case "closePrepared":
      throw ACTIONS_ONLY(c.kind === "createPrepared" ? "CreatePreparedStatement" : "ClosePreparedStatement");
    default:
      throw new ApiError("INTERNAL", `Flight SQL ${c.kind} is a metadata command, not a query`);
  }
}

function tenantTables(ctx: ApiContext, p: Principal): string[] {
  return grantedTables(p, ctx.node.catalog().get(p.tenant)?.keys() ?? []);
}

function metadataSchema(c: MetadataCommand): Schema {
  switch (c.kind) {
    case "sqlInfo":
      return SQL_INFO_SCHEMA;
    case "catalogs":
      return CATALOGS_SCHEMA;
    case "dbSchemas":
      return DB_SCHEMAS_SCHEMA;
    case "tables":
      return tablesSchema(c.request.includeSchema);
    case "tableTypes":
      return TABLE_TYPES_SCHEMA;
  }
}

/** The serialized (encapsulated IPC) schema of a table as a whole-table query returns it. */
async function tableSchemaBytes(ctx: ApiContext, p: Principal, table: string): Promise<Uint8Array> {
  return encapsulate(schemaMessage(await ctx.engine.schema(p.tenant, ctx.engine.tableQuery(table))).header);
}

/** The answer of a metadata command (built here, read from the catalog: no query runs). */
export async function metadataBatch(ctx: ApiContext, p: Principal, c: MetadataCommand): Promise<RecordBatch> {
  switch (c.kind) {
    case "sqlInfo":
      return sqlInfoBatch(c.info);
    case "catalogs":
      return catalogsBatch();
    case "dbSchemas":
      return dbSchemasBatch(p.tenant, c.request);
    case "tables": {
      const names = tableNames(p.tenant, tenantTables(ctx, p), c.request);
      const schemas = c.request.includeSchema ? await Promise.all(names.map((t) => tableSchemaBytes(ctx, p, t))) : undefined;
      return tablesBatch(p.tenant, names, schemas);
    }
    case "tableTypes":
      return tableTypesBatch();
  }
}

export interface SqlPlan {
  readonly schema: Schema;
  readonly ticket: Uint8Array;
}

/**
 * GetFlightInfo / GetSchema of a Flight SQL command: a statement's ticket is
 * the JSON query it compiles to (DoGet runs it like any JSON ticket, on any
 * node); a metadata command's ticket is the command itself (`cmd`, its Any bytes).
 */
export async function sqlPlan(ctx: ApiContext, p: Principal, c: SqlCommand, cmd: Uint8Array): Promise<SqlPlan> {
  if (c.kind === "sqlInfo" || c.kind === "catalogs" || c.kind === "dbSchemas" || c.kind === "tables" || c.kind === "tableTypes") {
    return { schema: metadataSchema(c), ticket: cmd };
  }
  const query = sqlQuery(ctx, p, c);
  return { schema: await ctx.engine.schema(p.tenant, query), ticket: encoder.encode(JSON.stringify(query)) };
}

/** DoPut under a Flight SQL descriptor: writes and parameter binding are refused by name. */
export function refusePut(c: SqlCommand): ApiError {
  if (c.kind === "prepared") {
    return new ApiError("UNIMPLEMENTED", "binding parameters to a prepared statement (DoPut with CommandPreparedStatementQuery) is not supported: Proxist's Flight SQL binds no parameters; write the values into the statement text and prepare it again");
  }
  if (c.kind === "unsupported") return unsupported(c.message);
  return new ApiError("UNIMPLEMENTED", `DoPut with a Flight SQL ${c.kind} command is not a write; send it with GetFlightInfo, then DoGet the ticket. Proxist's Flight SQL is read-only; ${INGEST_PATHS}`);
}
