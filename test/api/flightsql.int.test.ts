// Flight SQL with a real pyarrow.flight client (child process) sending the
// Flight SQL messages as google.protobuf.Any, built from the repository's
// FlightSql.proto through a descriptor set `buf build` writes here: against a
// real nats-server + node and the node's query engine. Every result is read by
// pyarrow; statements and prepared statements equal the same query over plain
// DoGet of a JSON ticket.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiFixture, ingest, lsnOf, query, tradesIpc } from "./fixture.js";
import type { ApiFixture } from "./fixture.js";
import { havePython, runPython } from "./python.js";

const SCRIPT = fileURLToPath(new URL("./flightsql_client.py", import.meta.url));
const PROTOCOLS = fileURLToPath(new URL("../../protocols", import.meta.url));
const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const T0 = 1_700_000_000_000_000;
const ROWS = 3000;

let f: ApiFixture;
let reader: string;
let writer: string;
let dir: string;
let descriptors: string;

const sql = (command: string, args: Record<string, string | number | boolean | undefined>) =>
  runPython(SCRIPT, command, { port: f.api.port, descriptors, ...args });

beforeAll(async () => {
  if (!havePython()) throw new Error("the Python venv is missing: run `bash scripts/setup.sh` (it creates .venv with pyarrow and protobuf)");
  dir = mkdtempSync(join(tmpdir(), "px-flightsql-"));
  descriptors = join(dir, "flightsql.binpb");
  execFileSync(BUF, ["build", "-o", descriptors, "--path", "proto/arrow/flight/protocol/sql/FlightSql.proto"], { cwd: PROTOCOLS });
  f = await apiFixture();
  reader = await f.token("alpha", "reader");
  writer = await f.token("alpha", "writer");
  const { acks, error } = await ingest(f.proxist(), writer, [{ table: "trades", arrowIpc: tradesIpc(ROWS, T0) }]);
  expect(error).toBeUndefined();
  // Read-after-write: SQL has no minLsn, so wait here until the shards applied the batch.
  const seen = await query(f.proxist(), reader, { table: "trades", minLsn: lsnOf(acks) });
  expect(seen.rows).toBe(ROWS);
}, 60_000);
afterAll(async () => {
  await f?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("flight sql with pyarrow", () => {
  it("flightsql - GetSqlInfo answers the server name, version, read-only and SQL grammar", async () => {
    const out = await sql("sqlinfo", { token: reader, info: "0,1,3,4,525,529,531,99999" });
    expect(out.error, String(out.message)).toBeUndefined();
    expect(out.values).toEqual({ "0": "Proxist", "1": expect.stringMatching(/^\d+\.\d+\.\d+/), "3": true, "4": true, "525": 1, "529": "tenant", "531": "" });
    expect(out.schema).toEqual([
      "info_name:uint32 not null",
      "value:dense_union<string_value: string=0, bool_value: bool=1, bigint_value: int64=2, int32_bitmask: int32=3, string_list: list<item: string>=4, int32_to_int32_list_map: map<int32, list<item: int32>>=5> not null",
    ]);
  });

  it("flightsql - GetTables lists the tenant's tables with each one's serialized Arrow schema", async () => {
    const out = await sql("tables", { token: reader, "include-schema": true });
    expect(out.error, String(out.message)).toBeUndefined();
    expect(out.columns).toEqual(["catalog_name", "db_schema_name", "table_name", "table_type", "table_schema"]);
    expect(out.info_columns).toEqual(out.columns);
    expect(out.tables).toEqual([
      { catalog_name: null, db_schema_name: "alpha", table_name: "quotes", table_type: "TABLE", table_schema: ["sym:dictionary<values=string, indices=int32, ordered=0>", "ts:timestamp[us, tz=UTC]", "bid:double", "ask:double"] },
      { catalog_name: null, db_schema_name: "alpha", table_name: "trades", table_type: "TABLE", table_schema: ["sym:dictionary<values=string, indices=int32, ordered=0>", "ts:timestamp[us, tz=UTC]", "price:double", "size:double"] },
    ]);
    const filtered = await sql("tables", { token: reader, pattern: "tr%" });
    expect(filtered.columns).toEqual(["catalog_name", "db_schema_name", "table_name", "table_type"]);
    expect((filtered.tables as { table_name: string }[]).map((t) => t.table_name)).toEqual(["trades"]);
  });

  it("flightsql - GetDbSchemas shows the token's tenant as the one schema; no catalogs; one table type", async () => {
    const out = await sql("browse", { token: reader, pattern: "beta" });
    expect(out.error, String(out.message)).toBeUndefined();
    expect(out.catalogs).toEqual([]);
    expect(out.catalog_columns).toEqual(["catalog_name"]);
    expect(out.schemas).toEqual([{ catalog_name: null, db_schema_name: "alpha" }]);
    expect(out.filtered).toEqual([]);
    expect(out.table_types).toEqual([{ table_type: "TABLE" }]);
  });

  it("flightsql - a statement streams the same table as plain DoGet of the same query; GetSchema describes it", async () => {
    const t1 = T0 + 2000;
    const out = await sql("statement", {
      token: reader,
      sql: `SELECT * FROM trades WHERE sym IN ('AAPL', 'IBM') AND ts >= ${T0 + 100} AND ts < ${t1}`,
      query: JSON.stringify({ table: "trades", symbols: ["AAPL", "IBM"], t0: T0 + 100, t1 }),
    });
    expect(out.error, String(out.message)).toBeUndefined();
    expect(out.rows).toBeGreaterThan(1000);
    expect(out.rows).toBe(out.plain_rows);
    expect(out.equal).toBe(true);
    expect(out.columns).toEqual(["sym", "ts", "price", "size"]);
    expect(out.info_schema).toEqual(out.columns);
    expect(out.get_schema).toEqual(out.columns);
    expect(out.types).toEqual(["dictionary<values=string, indices=int32, ordered=0>", "timestamp[us, tz=UTC]", "double", "double"]);
  });

  it("flightsql - a prepared statement runs twice with the same rows as plain DoGet, then closes", async () => {
    const out = await sql("prepared", {
      token: reader,
      sql: "SELECT sym, ts, price FROM trades LATEST ON ts PARTITION BY sym",
      query: JSON.stringify({ op: "lastBy", table: "trades", columns: ["price"] }),
    });
    expect(out.error, String(out.message)).toBeUndefined();
    expect(out.dataset_schema).toEqual(["sym", "ts", "price"]);
    expect(out.parameters).toBe(0);
    expect(out.runs).toEqual([
      { rows: 3, equal: true },
      { rows: 3, equal: true },
    ]);
    expect(out.close_results).toBe(0);
    expect(out.actions).toEqual(["ClosePreparedStatement", "CreatePreparedStatement"]);
  });

  it("flightsql - a bad statement is INVALID_ARGUMENT naming the construct and the fix", async () => {
    const out = await sql("statement", { token: reader, sql: "SELECT * FROM trades t1 FULL OUTER JOIN quotes t2 ON t1.sym = t2.sym", query: "{}" });
    // pyarrow raises INVALID_ARGUMENT as ArrowInvalid.
    expect(out.error).toBe("ArrowInvalid");
    expect(out.message).toMatch(/SQL: .*not supported; .*ASOF JOIN/);
    const placeholder = await sql("prepared", { token: reader, sql: "SELECT * FROM trades WHERE sym = ?", query: "{}" });
    expect(placeholder.message).toMatch(/parameter placeholder "\?" at offset 33 is not supported; .*write the values into the statement text/);
    const unknown = await sql("statement", { token: reader, sql: "SELECT * FROM orders", query: "{}" });
    expect(unknown.message).toMatch(/tenant alpha has no table orders \(its tables: quotes, trades\)/);
  });

  it("flightsql - updates and parameter binding are refused naming the ingest paths; unserved commands by name", async () => {
    const update = await sql("update", { token: writer, sql: "INSERT INTO trades VALUES ('AAPL', 1, 2, 3)" });
    expect(update.message).toMatch(/CommandStatementUpdate is refused: Proxist's Flight SQL is read-only; ingest with Flight DoPut on a table path descriptor.*POST \/v1\/ingest\/<table>/);
    expect(update.message).toMatch(/UNIMPLEMENTED|grpc_status:12|not implemented/i);
    const bind = await sql("bind", { token: writer });
    expect(bind.message).toMatch(/binding parameters to a prepared statement .* is not supported/);
    const keys = await sql("keys", { token: reader });
    expect(keys.message).toMatch(/Flight SQL CommandGetPrimaryKeys is not offered by Proxist; it serves CommandStatementQuery/);
  });

  it("flightsql - a wrong token is UNAUTHENTICATED before any command runs", async () => {
    const out = await sql("sqlinfo", { token: "px_nope.nothing" });
    expect(out.error).toBe("FlightUnauthenticatedError");
    const none = await sql("tables", {});
    expect(none.error).toBe("FlightUnauthenticatedError");
  });
});
