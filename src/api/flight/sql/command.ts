// Flight SQL commands as they arrive: a FlightDescriptor.cmd, a Ticket or an
// Action.body holding a google.protobuf.Any whose type URL names an
// arrow.flight.protocol.sql message. Decoded into one tagged union; bytes that
// are not such an Any are left to Proxist's JSON forms (undefined). Pure.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import {
  ActionClosePreparedStatementRequestSchema,
  ActionCreatePreparedStatementRequestSchema,
  CommandGetCatalogsSchema,
  CommandGetDbSchemasSchema,
  CommandGetSqlInfoSchema,
  CommandGetTableTypesSchema,
  CommandGetTablesSchema,
  CommandPreparedStatementQuerySchema,
  CommandStatementQuerySchema,
  TicketStatementQuerySchema,
} from "../../../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";
import type { CommandGetDbSchemas, CommandGetTables } from "../../../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";
import { ApiError } from "../../errors.js";

export const SQL_PACKAGE = "arrow.flight.protocol.sql";
const TYPE_URL_PREFIX = "type.googleapis.com/";

export type SqlCommand =
  | { readonly kind: "statement"; readonly sql: string }
  | { readonly kind: "prepared"; readonly handle: Uint8Array }
  | { readonly kind: "sqlInfo"; readonly info: readonly number[] }
  | { readonly kind: "catalogs" }
  | { readonly kind: "dbSchemas"; readonly request: CommandGetDbSchemas }
  | { readonly kind: "tables"; readonly request: CommandGetTables }
  | { readonly kind: "tableTypes" }
  | { readonly kind: "createPrepared"; readonly sql: string }
  | { readonly kind: "closePrepared"; readonly handle: Uint8Array }
  /** A Flight SQL message Proxist does not serve (updates, ingest, keys, Substrait, transactions). */
  | { readonly kind: "unsupported"; readonly message: string };

/** Metadata commands answer with a table Proxist builds itself (not the query engine). */
export type MetadataCommand = Extract<SqlCommand, { kind: "sqlInfo" | "catalogs" | "dbSchemas" | "tables" | "tableTypes" }>;
export const isMetadata = (c: SqlCommand): c is MetadataCommand => ["sqlInfo", "catalogs", "dbSchemas", "tables", "tableTypes"].includes(c.kind);

function noTransactions(transactionId: Uint8Array | undefined, message: string): void {
  if (transactionId !== undefined && transactionId.length > 0) {
    throw new ApiError("INVALID_ARGUMENT", `${message} names a transaction, but Proxist has no transactions (every query reads a consistent snapshot on its own); send it without transaction_id`);
  }
}

type Decoder = (bytes: Uint8Array) => SqlCommand;
const as = <D extends DescMessage>(schema: D, f: (m: MessageShape<D>) => SqlCommand): [string, Decoder] => [
  schema.typeName,
  (bytes) => f(fromBinary(schema, bytes, { readUnknownFields: false })),
];

const DECODERS = new Map<string, Decoder>([
  as(CommandStatementQuerySchema, (m) => (noTransactions(m.transactionId, "CommandStatementQuery"), { kind: "statement", sql: m.query })),
  // A ticket some clients build themselves: its handle is the statement text.
  as(TicketStatementQuerySchema, (m) => ({ kind: "statement", sql: new TextDecoder().decode(m.statementHandle) })),
  as(CommandPreparedStatementQuerySchema, (m) => ({ kind: "prepared", handle: m.preparedStatementHandle })),
  as(CommandGetSqlInfoSchema, (m) => ({ kind: "sqlInfo", info: m.info })),
  as(CommandGetCatalogsSchema, () => ({ kind: "catalogs" })),
  as(CommandGetDbSchemasSchema, (m) => ({ kind: "dbSchemas", request: m })),
  as(CommandGetTablesSchema, (m) => ({ kind: "tables", request: m })),
  as(CommandGetTableTypesSchema, () => ({ kind: "tableTypes" })),
  as(ActionCreatePreparedStatementRequestSchema, (m) => (noTransactions(m.transactionId, "ActionCreatePreparedStatementRequest"), { kind: "createPrepared", sql: m.query })),
  as(ActionClosePreparedStatementRequestSchema, (m) => ({ kind: "closePrepared", handle: m.preparedStatementHandle })),
]);

/**
 * The Flight SQL command in `bytes`, or undefined when they are not a
 * google.protobuf.Any of an arrow.flight.protocol.sql message (a JSON ticket
 * or command starts with "{", which is never a valid Any's first byte).
 */
export function flightSqlCommand(bytes: Uint8Array, what: string): SqlCommand | undefined {
  // An Any starts with field 1 (type_url), length-delimited: tag byte 0x0a.
  if (bytes.length === 0 || bytes[0] !== 0x0a) return undefined;
  let typeUrl: string;
  let value: Uint8Array;
  try {
    ({ typeUrl, value } = fromBinary(AnySchema, bytes, { readUnknownFields: false }));
  } catch {
    return undefined;
  }
  if (!typeUrl.startsWith(TYPE_URL_PREFIX)) return undefined;
  const typeName = typeUrl.slice(TYPE_URL_PREFIX.length);
  if (!typeName.startsWith(`${SQL_PACKAGE}.`)) return undefined;
  const decode = DECODERS.get(typeName);
  const message = typeName.slice(SQL_PACKAGE.length + 1);
  if (decode === undefined) return { kind: "unsupported", message };
  try {
    return decode(value);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError("INVALID_ARGUMENT", `${what} holds a Flight SQL ${message} that is not valid protobuf (${(e as Error).message}); check the client's FlightSql.proto`);
  }
}

/** The Any bytes of a Flight SQL message (tickets of metadata commands, action results). */
export function packSql<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  return toBinary(AnySchema, anyPack(schema, message));
}
