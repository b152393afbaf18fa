// Against a real clickhouse-server (the installed one: 18.16 here) on free
// ports with a temp data dir: schema, RowBinary round trip, landed LSNs, parts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import {
  ClickhouseHttp,
  ClickhouseQueryError,
  ClickhouseSchemaMismatchError,
  databaseName,
  describeTable,
  detectServer,
  encodeRowBinary,
  encodeRowBinarySegments,
  ensureSchema,
  insertRowBinary,
  landedLsns,
  landedRows,
  selectRowBinary,
} from "../../src/clickhouse/index.js";
import type { ClickhouseServerInfo, DecodedRows } from "../../src/clickhouse/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { DAY0, DAY_MICROS, allTypesSpec, plainBatch, randomBatch, rowsOf } from "./batches.js";

const TENANT = "itest";
let server: ClickhouseServer;
let ch: ClickhouseHttp;
let info: ClickhouseServerInfo;
let tableNo = 0;
const freshSpec = (): TableSpec => allTypesSpec(`t${++tableNo}`);

beforeAll(async () => {
  server = await startClickhouseServer();
  ch = new ClickhouseHttp({ url: server.httpUrl });
  info = await detectServer(ch);
});

afterAll(async () => {
  ch?.close();
  await server?.dispose();
});

/** Rows with their bookkeeping, sorted by the unique key (_lsn, _row). */
function keyed(d: DecodedRows) {
  return rowsOf(d.batch)
    .map((r, i) => ({ ...r, lsn: d.lsn[i]!, row: d.row[i]!, shard: d.shard[i]! }))
    .sort((a, b) => a.lsn - b.lsn || a.row - b.row);
}

async function activeParts(spec: TableSpec): Promise<number[]> {
  const text = await ch.query(
    `SELECT rows FROM system.parts WHERE database = '${databaseName(TENANT)}' AND table = '${spec.name}' AND active ORDER BY name FORMAT TabSeparated`,
  );
  return text.split("\n").filter((l) => l !== "").map(Number);
}

describe("clickhouse server", () => {
  it("server - answers ping and reports a version with matching capabilities", async () => {
    expect(await ch.ping()).toBe(true);
    expect(info.version.major).toBeGreaterThanOrEqual(18);
    if (info.version.major === 18) expect(info.capabilities.insertDeduplicationToken).toBe(false);
  });
});

describe("ddl", () => {
  it("ddl - ensureSchema twice is idempotent and creates the expected columns", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    await ensureSchema(ch, TENANT, spec);
    const cols = await describeTable(ch, TENANT, spec.name);
    expect([...cols]).toEqual([
      ["sym", "String"],
      ["ts", "Int64"],
      ["price", "Float64"],
      ["ratio", "Float32"],
      ["qty", "Int64"],
      ["lots", "Int32"],
      ["buy", "UInt8"],
      ["_lsn", "UInt64"],
      ["_row", "UInt32"],
      ["_shard", "UInt16"],
    ]);
    const create = await ch.query(`SHOW CREATE TABLE ${databaseName(TENANT)}.${spec.name} FORMAT TabSeparatedRaw`);
    expect(create).toMatch(/PARTITION BY toDate\(toDateTime\(intDiv\(ts, 1000000\), \\?'UTC\\?'\)\)/);
    expect(create).toMatch(/ORDER BY \(sym, ts, _lsn, _row\)/);
  });

  it("ddl - ensureSchema adds a value column a newer spec declares", async () => {
    const v1 = parseTableSpec({ name: "evolving", columns: [{ name: "price", type: "float64" }] });
    const v2 = parseTableSpec({ name: "evolving", version: 2, columns: [{ name: "price", type: "float64" }, { name: "venue", type: "int32" }] });
    await ensureSchema(ch, TENANT, v1);
    await ensureSchema(ch, TENANT, v2);
    expect((await describeTable(ch, TENANT, "evolving")).get("venue")).toBe("Int32");
  });

  it("ddl - ensureSchema refuses a table whose column has another type, naming column and fix", async () => {
    await ensureSchema(ch, TENANT, parseTableSpec({ name: "clash", columns: [{ name: "price", type: "float64" }] }));
    const other = parseTableSpec({ name: "clash", columns: [{ name: "price", type: "int32" }] });
    await expect(ensureSchema(ch, TENANT, other)).rejects.toThrow(ClickhouseSchemaMismatchError);
    await expect(ensureSchema(ch, TENANT, other)).rejects.toThrow(/column price must be Int32, got Float64/);
  });
});

describe("rowbinary", () => {
  it("rowbinary - insert then SELECT FORMAT RowBinary decodes to the input: all types, NaN, Inf, unicode, negatives", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    const a = randomBatch(2_000, 11, DAY0);
    const b = randomBatch(1_000, 12, DAY0);
    const body = encodeRowBinarySegments(spec, [
      { batch: a, meta: { lsn: 100, shard: 3 } },
      { batch: b, meta: { lsn: 101, shard: 3 } },
    ]);
    await insertRowBinary(ch, TENANT, spec, body, { rows: 3_000, capabilities: info.capabilities });
    const back = await selectRowBinary(ch, TENANT, spec);
    const want = [
      ...rowsOf(a).map((r, i) => ({ ...r, lsn: 100, row: i, shard: 3 })),
      ...rowsOf(b).map((r, i) => ({ ...r, lsn: 101, row: i, shard: 3 })),
    ];
    expect(keyed(back)).toEqual(want);
  });

  it("rowbinary - timestamps before 1970 and far in the future survive", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    const batch = randomBatch(4, 1, 0);
    batch.ts.set([-86_400_000_000 * 365, -1, 0, 4_102_444_800_000_000]);
    await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, batch, { lsn: 1, shard: 0 }));
    const back = await selectRowBinary(ch, TENANT, spec);
    expect(Array.from(back.batch.ts).sort((x, y) => x - y)).toEqual([-86_400_000_000 * 365, -1, 0, 4_102_444_800_000_000]);
  });

  it("rowbinary - a bad INSERT is a ClickhouseQueryError with the server's code", async () => {
    const missing = allTypesSpec("does_not_exist");
    await ensureSchema(ch, TENANT, freshSpec()); // the database exists, the table does not
    const err = await insertRowBinary(ch, TENANT, missing, encodeRowBinary(missing, randomBatch(1, 1, DAY0), { lsn: 1, shard: 0 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickhouseQueryError);
    expect(err).toMatchObject({ code: 60, retryable: false });
    const syntax = await ch.query("SELEC 1").catch((e: unknown) => e);
    expect(syntax).toMatchObject({ _tag: "ClickhouseQueryError", code: 62, httpStatus: 400 });
  });
});

describe("landed", () => {
  it("landed - landedLsns reports exactly the LSNs and row counts inserted, per shard and range", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    const inserted = new Map<string, number>();
    for (const [lsn, shard, rows] of [
      [10, 0, 5],
      [11, 1, 7],
      [12, 0, 1],
      [14, 0, 300],
      [15, 1, 2],
    ] as const) {
      await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, randomBatch(rows, lsn, DAY0), { lsn, shard }));
      inserted.set(`${shard}:${lsn}`, rows);
    }
    expect([...(await landedLsns(ch, TENANT, spec.name, 0, 0, 1_000))]).toEqual([
      [10, 5],
      [12, 1],
      [14, 300],
    ]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 1, 0, 1_000))]).toEqual([
      [11, 7],
      [15, 2],
    ]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 0, 11, 13))]).toEqual([[12, 1]]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 0, 13, 13))]).toEqual([]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 2, 0, 1_000))]).toEqual([]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 0, 20, 10))]).toEqual([]);
    // ts bounds that exclude the whole day find nothing; bounds around it find everything.
    expect((await landedLsns(ch, TENANT, spec.name, 0, 0, 1_000, { tsMinMicros: DAY0 + DAY_MICROS })).size).toBe(0);
    expect((await landedLsns(ch, TENANT, spec.name, 0, 0, 1_000, { tsMinMicros: DAY0, tsMaxMicros: DAY0 + DAY_MICROS })).size).toBe(3);
    expect(Array.from(await landedRows(ch, TENANT, spec.name, 1, 11))).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("landed - invalid numbers never reach SQL", async () => {
    await expect(landedLsns(ch, TENANT, "t1", 0, 1.5, 2)).rejects.toThrow(/lsnFrom must be an integer/);
    await expect(landedLsns(ch, TENANT, "t1", 70_000, 1, 2)).rejects.toThrow(/bucket/);
    await expect(landedLsns(ch, TENANT, "t1; DROP", 0, 1, 2)).rejects.toThrow(/identifier/);
  });
});

describe("parts (facts the sink relies on)", () => {
  it("parts - one INSERT into one partition, up to max_insert_block_size rows, creates exactly one part", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    await ch.command(`SYSTEM STOP MERGES`);
    try {
      const rows = 1_100_000; // above the default max_insert_block_size (1048576): insertRowBinary raises it
      await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 1, shard: 0 }), { rows });
      expect(await activeParts(spec)).toEqual([rows]);
      // The same body without the raised block size is cut into two parts.
      await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 2, shard: 0 }));
      expect((await activeParts(spec)).length).toBe(3);
    } finally {
      await ch.command(`SYSTEM START MERGES`);
    }
  });

  it("parts - an INSERT spanning two UTC days makes one part per day", async () => {
    const spec = freshSpec();
    await ensureSchema(ch, TENANT, spec);
    const batch = randomBatch(1_000, 5, DAY0 + DAY_MICROS - 500, 1_000);
    await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, batch, { lsn: 1, shard: 0 }), { rows: 1_000 });
    expect((await activeParts(spec)).length).toBe(2);
  });
});
