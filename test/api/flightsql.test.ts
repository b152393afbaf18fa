// Flight SQL command decoding and the pure pieces around it (patterns,
// placeholders, prepared handles, table filtering, SqlInfo selection), without
// a server: the bytes are what a client packs with google.protobuf.Any.
import { create, toBinary } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  CommandGetPrimaryKeysSchema,
  CommandGetSqlInfoSchema,
  CommandGetTablesSchema,
  CommandStatementQuerySchema,
  CommandStatementUpdateSchema,
} from "../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";
import { ApiError } from "../../src/api/errors.js";
import { flightSqlCommand, packSql } from "../../src/api/flight/sql/command.js";
import { likeMatcher, tableNames } from "../../src/api/flight/sql/metadata.js";
import { refusePut, unsupported } from "../../src/api/flight/sql/serve.js";
import { sqlInfoBatch } from "../../src/api/flight/sql/sqlinfo.js";
import { placeholderAt, preparedHandle, preparedSql } from "../../src/api/flight/sql/statement.js";

const encoder = new TextEncoder();
const thrown = (f: () => unknown): ApiError => {
  try {
    f();
  } catch (e) {
    return e as ApiError;
  }
  throw new Error("expected a throw");
};

describe("flight sql - command decoding", () => {
  it("flightsql - a JSON ticket or command is left to the JSON path", () => {
    expect(flightSqlCommand(encoder.encode(JSON.stringify({ table: "trades" })), "the ticket")).toBeUndefined();
    expect(flightSqlCommand(new Uint8Array(0), "the ticket")).toBeUndefined();
  });

  it("flightsql - an Any of CommandStatementQuery is a statement with its text", () => {
    const bytes = packSql(CommandStatementQuerySchema, create(CommandStatementQuerySchema, { query: "SELECT * FROM trades" }));
    expect(new TextDecoder().decode(bytes.subarray(2, 2 + bytes[1]!))).toBe("type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery");
    expect(flightSqlCommand(bytes, "the descriptor command")).toEqual({ kind: "statement", sql: "SELECT * FROM trades" });
  });

  it("flightsql - GetTables and GetSqlInfo keep their fields", () => {
    const tables = flightSqlCommand(packSql(CommandGetTablesSchema, create(CommandGetTablesSchema, { tableNameFilterPattern: "tr%", tableTypes: ["TABLE"], includeSchema: true })), "cmd");
    expect(tables?.kind).toBe("tables");
    const r = (tables as { request: { tableNameFilterPattern?: string; tableTypes: string[]; includeSchema: boolean; catalog?: string } }).request;
    expect([r.tableNameFilterPattern, r.tableTypes, r.includeSchema, r.catalog]).toEqual(["tr%", ["TABLE"], true, undefined]);
    expect(flightSqlCommand(packSql(CommandGetSqlInfoSchema, create(CommandGetSqlInfoSchema, { info: [0, 3, 525] })), "cmd")).toEqual({ kind: "sqlInfo", info: [0, 3, 525] });
  });

  it("flightsql - a statement inside a transaction is INVALID_ARGUMENT naming transaction_id", () => {
    const bytes = packSql(CommandStatementQuerySchema, create(CommandStatementQuerySchema, { query: "SELECT 1", transactionId: new Uint8Array([1]) }));
    const e = thrown(() => flightSqlCommand(bytes, "cmd"));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toMatch(/CommandStatementQuery names a transaction, but Proxist has no transactions .* send it without transaction_id/);
  });

  it("flightsql - Flight SQL messages Proxist does not serve are named; other Any types are not Flight SQL", () => {
    expect(flightSqlCommand(packSql(CommandGetPrimaryKeysSchema, create(CommandGetPrimaryKeysSchema, { table: "trades" })), "cmd")).toEqual({ kind: "unsupported", message: "CommandGetPrimaryKeys" });
    const other = toBinary(AnySchema, create(AnySchema, { typeUrl: "type.googleapis.com/google.protobuf.Empty", value: new Uint8Array(0) }));
    expect(flightSqlCommand(other, "cmd")).toBeUndefined();
  });

  it("flightsql - a Flight SQL message that is not valid protobuf is INVALID_ARGUMENT naming it", () => {
    const bad = toBinary(AnySchema, create(AnySchema, { typeUrl: "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery", value: new Uint8Array([0x0a, 0x05, 0x41]) }));
    const e = thrown(() => flightSqlCommand(bad, "the ticket"));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toMatch(/the ticket holds a Flight SQL CommandStatementQuery that is not valid protobuf/);
  });

  it("flightsql - writes are refused naming the ingest paths; parameter binding by name", () => {
    const update = flightSqlCommand(packSql(CommandStatementUpdateSchema, create(CommandStatementUpdateSchema, { query: "DELETE FROM trades" })), "cmd")!;
    const e = refusePut(update);
    expect(e.code).toBe("UNIMPLEMENTED");
    expect(e.message).toMatch(/CommandStatementUpdate is refused: Proxist's Flight SQL is read-only; ingest with Flight DoPut .* POST \/v1\/ingest\/<table>/);
    expect(refusePut({ kind: "prepared", handle: preparedHandle("SELECT 1") }).message).toMatch(/binds no parameters/);
    expect(unsupported("CommandGetXdbcTypeInfo").message).toMatch(/CommandGetXdbcTypeInfo is not offered by Proxist; it serves CommandStatementQuery/);
  });
});

describe("flight sql - statements and metadata", () => {
  it("flightsql - placeholders are found outside quotes only", () => {
    expect(placeholderAt("SELECT * FROM trades WHERE sym = ?")).toBe(33);
    expect(placeholderAt("SELECT * FROM trades WHERE sym = $1")).toBe(33);
    expect(placeholderAt("SELECT * FROM trades WHERE sym = 'a?b' AND x = '$1'")).toBe(-1);
  });

  it("flightsql - a prepared handle carries the statement; a foreign handle is refused", () => {
    expect(preparedSql(preparedHandle("SELECT * FROM trades"))).toBe("SELECT * FROM trades");
    const e = thrown(() => preparedSql(encoder.encode("42")));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toMatch(/was not made by Proxist's CreatePreparedStatement; prepare the statement again/);
  });

  it("flightsql - LIKE patterns: % runs, _ one character, \\ escapes, other characters literal", () => {
    expect(likeMatcher("tr%")("trades")).toBe(true);
    expect(likeMatcher("tr%")("quotes")).toBe(false);
    expect(likeMatcher("_uotes")("quotes")).toBe(true);
    expect(likeMatcher("a\\_b")("a_b")).toBe(true);
    expect(likeMatcher("a\\_b")("axb")).toBe(false);
    expect(likeMatcher("a.b")("axb")).toBe(false);
    expect(likeMatcher(undefined)("anything")).toBe(true);
  });

  it("flightsql - GetTables filters by schema (tenant), table pattern, type and catalog", () => {
    const all = ["trades", "quotes", "fx"];
    const r = (o: Partial<{ catalog: string; dbSchemaFilterPattern: string; tableNameFilterPattern: string; tableTypes: string[] }>) => create(CommandGetTablesSchema, o);
    expect(tableNames("alpha", all, r({}))).toEqual(["fx", "quotes", "trades"]);
    expect(tableNames("alpha", all, r({ tableNameFilterPattern: "%s" }))).toEqual(["quotes", "trades"]);
    expect(tableNames("alpha", all, r({ dbSchemaFilterPattern: "beta" }))).toEqual([]);
    expect(tableNames("alpha", all, r({ tableTypes: ["VIEW"] }))).toEqual([]);
    expect(tableNames("alpha", all, r({ catalog: "main" }))).toEqual([]);
    expect(tableNames("alpha", all, r({ catalog: "" }))).toEqual(["fx", "quotes", "trades"]);
  });

  it("flightsql - GetSqlInfo answers the ids asked for that it knows, in order", () => {
    const b = sqlInfoBatch([3, 99999, 0]);
    expect(b.numRows).toBe(2);
    expect([...b.getChild("info_name")!]).toEqual([3, 0]);
    expect(b.getChild("value")!.get(0)).toBe(true);
    expect(b.getChild("value")!.get(1)).toBe("Proxist");
    expect(sqlInfoBatch([]).numRows).toBeGreaterThan(20);
  });
});
