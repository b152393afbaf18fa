// Arrow Flight with a real pyarrow.flight client (child process) against a
// real nats-server + node and the node's query engine: handshake, DoPut of a
// pandas DataFrame and DoGet of a query giving the same rows back (read after
// write through the acks' LSNs), metadata calls, compression.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiFixture } from "./fixture.js";
import type { ApiFixture } from "./fixture.js";
import { havePython, pyFlight } from "./python.js";

let f: ApiFixture;
let writer: string;
let reader: string;
beforeAll(async () => {
  if (!havePython()) throw new Error("the Python venv is missing: run `bash scripts/setup.sh` (it creates .venv with pyarrow)");
  f = await apiFixture({ limits: { maxDecompressedBytes: 1 << 20 } });
  writer = await f.token("alpha", "writer");
  reader = await f.token("alpha", "reader");
});
afterAll(async () => {
  await f?.close();
});

describe("flight with pyarrow", () => {
  it("flight - authenticate_basic_token gets the bearer token back in the response headers", async () => {
    const out = await pyFlight("handshake", { port: f.api.port, token: writer });
    expect(out).toEqual({ key: "authorization", bearer_is_token: true });
  });

  it("flight - DoPut of a pandas DataFrame and DoGet of a query return the same rows", async () => {
    const out = await pyFlight("roundtrip", { port: f.api.port, token: writer, basic: true, rows: 5000, "batch-rows": 1000, t0: 1_700_000_000_000_000 });
    expect(out.error).toBeUndefined();
    expect(out.put_rows).toBe(5000);
    expect(out.got_rows).toBe(5000);
    expect(out.equal).toBe(true);
    expect(out.columns).toEqual(["sym", "ts", "price", "size"]);
    const acks = out.acks as { batch: number; rows: number; firstLsn: number }[];
    expect(acks.map((a) => a.batch)).toEqual([0, 1, 2, 3, 4]);
    expect(acks.every((a) => a.rows === 1000 && a.firstLsn > 0)).toBe(true);
  });

  it("flight - a ZSTD-compressed DoPut round-trips", async () => {
    const out = await pyFlight("roundtrip", { port: f.api.port, token: writer, rows: 3000, "batch-rows": 1500, t0: 1_710_000_000_000_000, compression: "zstd" });
    expect(out.error).toBeUndefined();
    expect(out.equal).toBe(true);
  });

  it("flight - a compressed batch declaring more than maxDecompressedBytes is RESOURCE_EXHAUSTED", async () => {
    const out = await pyFlight("put", { port: f.api.port, token: writer, rows: 100_000, "batch-rows": 100_000, compression: "zstd" });
    expect(out.message).toMatch(/maxDecompressedBytes = 1048576/);
    expect(out.message).toMatch(/resource exhausted|RESOURCE_EXHAUSTED|grpc_status:8/i);
  });

  it("flight - DoPut with a producer command is idempotent when the stream is sent again", async () => {
    const cmd = JSON.stringify({ table: "trades", producerId: "py-1", firstSeq: 100 });
    const first = await pyFlight("put", { port: f.api.port, token: writer, cmd, rows: 600, "batch-rows": 200, t0: 1_720_000_000_000_000 });
    const again = await pyFlight("put", { port: f.api.port, token: writer, cmd, rows: 600, "batch-rows": 200, t0: 1_720_000_000_000_000 });
    const a = first.acks as { firstLsn: number; lastLsn: number; duplicate: boolean }[];
    const b = again.acks as { firstLsn: number; duplicate: boolean }[];
    expect(b.map((x) => x.firstLsn)).toEqual(a.map((x) => x.firstLsn));
    expect(b.every((x) => x.duplicate)).toBe(true);
    const minLsn = Math.max(...a.map((x) => x.lastLsn));
    const got = await pyFlight("get", { port: f.api.port, token: reader, query: JSON.stringify({ table: "trades", t0: 1_720_000_000_000_000, t1: 1_720_000_000_010_000, minLsn }) });
    expect(got.rows).toBe(600);
  });

  it("flight - read_pandas shows ts as datetimes (timestamp[us, UTC]) and the schema metadata says whether the result is complete", async () => {
    const t0 = 1_725_000_000_000_000;
    const put = await pyFlight("put", { port: f.api.port, token: writer, rows: 50, "batch-rows": 50, t0 });
    const minLsn = Math.max(...(put.acks as { lastLsn: number }[]).map((x) => x.lastLsn));
    const got = await pyFlight("types", { port: f.api.port, token: reader, query: JSON.stringify({ table: "trades", t0, t1: t0 + 1_000_000, minLsn }) });
    expect(got.error).toBeUndefined();
    expect(got.rows).toBe(50);
    expect(got.ts_dtype).toMatch(/^datetime64\[us, UTC\]$/);
    expect(got.first_ts).toBe(new Date(t0 / 1000).toISOString().replace("Z", "+00:00").replace(".000", ""));
    expect((got.metadata as Record<string, string>)["proxist.complete"]).toMatch(/^(true|false)$/);
    const raw = await pyFlight("types", { port: f.api.port, token: reader, query: JSON.stringify({ table: "trades", t0, t1: t0 + 1_000_000, minLsn, tsType: "int64" }) });
    expect(raw.error, String(raw.message)).toBeUndefined();
    expect(raw.ts_dtype).toBe("int64");
  });

  it("flight - ListFlights lists the tenant's tables with their schemas", async () => {
    const out = await pyFlight("list", { port: f.api.port, token: reader });
    expect(out.flights).toEqual([
      { path: ["quotes"], schema: ["sym", "ts", "bid", "ask"] },
      { path: ["trades"], schema: ["sym", "ts", "price", "size"] },
    ]);
  });

  it("flight - GetSchema and GetFlightInfo describe a table; the ticket is a JSON query", async () => {
    const schema = await pyFlight("schema", { port: f.api.port, token: reader, table: "quotes" });
    expect(schema.schema).toEqual(["sym", "ts", "bid", "ask"]);
    const info = await pyFlight("info", { port: f.api.port, token: reader, path: "alpha/trades" });
    expect(info.endpoints).toBe(1);
    expect(JSON.parse(info.ticket as string)).toMatchObject({ table: "trades" });
  });

  it("flight - DoGet of an empty range gives the schema and no rows", async () => {
    const out = await pyFlight("get", { port: f.api.port, token: reader, query: JSON.stringify({ table: "quotes", t0: 0, t1: 1 }) });
    expect(out).toEqual({ rows: 0, columns: ["sym", "ts", "bid", "ask"] });
  });
});
