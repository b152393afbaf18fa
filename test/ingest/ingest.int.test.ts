// Ingest into the JetStream WAL against a real nats-server and node: exactly
// once with the acked LSNs, idempotent retries, and every kind of bad input
// rejected with nothing reaching the WAL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import { Bool, Float32, Int32, Utf8 } from "apache-arrow";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf, micros } from "../helpers/arrow.js";
import { readWal, walMessageCount } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { ipcToTickBatch } from "../../src/codec/arrow.js";
import { DEFAULT_CLUSTER_SPEC, parseClusterSpec } from "../../protocols/tablespec.js";
import { bucketOf } from "../../protocols/routing.js";
import type { IngestReply } from "../../protocols/ingest.js";

const SPEC = parseClusterSpec({
  tenants: [
    ...DEFAULT_CLUSTER_SPEC.tenants.map((t) => ({ name: t.name, tables: t.tables.map((x) => ({ name: x.name, columns: x.columns })) })),
    {
      name: "t2",
      tables: [
        {
          name: "small",
          shards: 2,
          maxBatchRows: 10,
          columns: [
            { name: "qty", type: "int64" },
            { name: "flag", type: "bool" },
            { name: "f32", type: "float32", allowNonFinite: true },
            { name: "n32", type: "int32" },
          ],
        },
      ],
    },
  ],
});
const trades = SPEC.tenants[0]!.tables.find((t) => t.name === "trades")!;
const small = SPEC.tenants[1]!.tables[0]!;

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc, {}, SPEC);
});
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

const dec = new TextDecoder();
async function send(subject: string, payload: Uint8Array, hdrs?: Record<string, string>): Promise<IngestReply> {
  const h = headers();
  for (const [k, v] of Object.entries(hdrs ?? {})) h.set(k, v);
  const m = await f.nc.request(subject, payload, { timeout: 5000, headers: h });
  return JSON.parse(dec.decode(m.data)) as IngestReply;
}

const T0 = micros("2026-11-25T14:30:00Z");
const goodTrades = (n = 3) =>
  ipcOf({
    sym: Array.from({ length: n }, (_, i) => `S${i}`),
    ts: BigInt64Array.from({ length: n }, (_, i) => T0 + BigInt(i)),
    price: Float64Array.from({ length: n }, (_, i) => 100 + i),
    size: Float64Array.from({ length: n }, () => 10),
  });

describe("ingest - WAL", () => {
  it("wal - acknowledged ticks are in the WAL exactly once at the acked LSNs", async () => {
    const before = await readWal(f.nc, "default");
    const walk = new RandomWalk(symbolNames(50), 7, Number(T0));
    const p = new TickPublisher(f.nc, { tenant: "default", spec: trades });
    const sent = [];
    const acks = [];
    for (let i = 0; i < 20; i++) {
      const b = walk.trades(500, 1_000_000);
      sent.push(b);
      acks.push(await p.publish(b));
    }
    const after = (await readWal(f.nc, "default")).slice(before.length);
    const byLsn = new Map(after.map((r) => [r.lsn, r]));
    let rows = 0;
    for (const ack of acks) {
      expect(ack.ok).toBe(true);
      for (const a of ack.appends) {
        const r = byLsn.get(a.lsn)!;
        expect(r, `record at LSN ${a.lsn}`).toBeDefined();
        expect(r.record.rows).toBe(a.rows);
        expect(r.record.bucket).toBe(a.bucket);
        expect(r.subject).toBe(`px.default.wal.trades.${a.bucket}`);
        expect(r.record.producerId).toBe(p.producerId);
        rows += a.rows;
      }
    }
    expect(after.length).toBe(acks.reduce((n, a) => n + a.appends.length, 0));
    expect(rows).toBe(20 * 500);
    // Every sent tick is in the WAL once, in the bucket its symbol hashes to.
    const key = (s: string, t: number, p: number) => `${s}|${t}|${p}`;
    const want = sent.flatMap((b) => Array.from({ length: b.rows }, (_, i) => key(b.symbols[b.symbolIndex[i]!]!, b.ts[i]!, b.values[0]![i]!))).sort();
    const got: string[] = [];
    for (const r of after) {
      const b = ipcToTickBatch(trades, r.record.payload, "wal");
      for (let i = 0; i < b.rows; i++) {
        const sym = b.symbols[b.symbolIndex[i]!]!;
        expect(bucketOf(sym, trades.shards)).toBe(r.record.bucket);
        got.push(key(sym, b.ts[i]!, b.values[0]![i]!));
      }
    }
    expect(got.sort()).toEqual(want);
  });

  it("dedup - a retried batch (same producer id and seq) is stored once", async () => {
    const payload = goodTrades(40);
    const hdrs = { "Px-Producer-Id": "retry-test", "Px-Producer-Seq": "17" };
    const first = await send("px.default.ingest.trades", payload, hdrs);
    const count = await walMessageCount(f.nc, "default");
    const second = await send("px.default.ingest.trades", payload, hdrs);
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    expect(second.appends.map((a) => a.lsn)).toEqual(first.appends.map((a) => a.lsn));
    expect(second.appends.every((a) => a.duplicate)).toBe(true);
    expect(await walMessageCount(f.nc, "default")).toBe(count);
  });

  it("types - int64, bool, float32 and int32 columns round-trip through the WAL", async () => {
    const before = (await readWal(f.nc, "t2")).length;
    const reply = await send(
      "px.t2.ingest.small",
      ipcOf({
        sym: ["X", "Y"],
        ts: BigInt64Array.of(T0, T0 + 1n),
        qty: BigInt64Array.of(-(2n ** 53n - 1n), 42n),
        flag: { values: [true, false], type: new Bool() },
        f32: { values: [Number.NaN, 1.5], type: new Float32() },
        n32: { values: [-7, 2147483647], type: new Int32() },
      }),
    );
    expect(reply.ok).toBe(true);
    const recs = (await readWal(f.nc, "t2")).slice(before);
    const rows = recs.flatMap((r) => {
      const b = ipcToTickBatch(small, r.record.payload, "wal");
      return Array.from({ length: b.rows }, (_, i) => [b.symbols[b.symbolIndex[i]!], b.values.map((v) => v[i])]);
    });
    expect(rows.sort()).toEqual([
      ["X", [-(2 ** 53 - 1), 1, Number.NaN, -7]],
      ["Y", [42, 0, 1.5, 2147483647]],
    ]);
  });
});

interface BadCase {
  readonly name: string;
  readonly subject: string;
  readonly payload: () => Uint8Array;
  readonly headers?: Record<string, string>;
  readonly code: string;
  readonly mentions: readonly string[];
}

const badCases: BadCase[] = [
  { name: "a missing column", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), price: Float64Array.of(1) }), code: "INVALID_ARGUMENT", mentions: ["column size is missing"] },
  { name: "an unknown column", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), price: Float64Array.of(1), size: Float64Array.of(1), venue: ["X"] }), code: "INVALID_ARGUMENT", mentions: ["column venue is not in the table"] },
  { name: "a wrong type", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), price: { values: ["1.5"], type: new Utf8() }, size: Float64Array.of(1) }), code: "INVALID_ARGUMENT", mentions: ["column price must be float64", "Utf8"] },
  { name: "a NaN where the spec forbids it", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A", "B"], ts: BigInt64Array.of(T0, T0), price: Float64Array.of(1, Number.NaN), size: Float64Array.of(1, 1) }), code: "INVALID_ARGUMENT", mentions: ["column price row 1", "NaN", "allowNonFinite"] },
  { name: "an Inf where the spec forbids it", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), price: Float64Array.of(1), size: Float64Array.of(Infinity) }), code: "INVALID_ARGUMENT", mentions: ["column size row 0", "Infinity"] },
  { name: "a timestamp before 1970", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(-5n), price: Float64Array.of(1), size: Float64Array.of(1) }), code: "INVALID_ARGUMENT", mentions: ["column ts row 0", "out of range"] },
  { name: "a timestamp in seconds sent as int64 (1970)", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0 / 1_000_000n), price: Float64Array.of(1), size: Float64Array.of(1) }), code: "INVALID_ARGUMENT", mentions: ["column ts row 0", "timeBounds.minTs", "check the unit: seconds/milliseconds/nanoseconds?"] },
  { name: "an empty batch", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: { values: [], type: new Utf8() }, ts: new BigInt64Array(0), price: new Float64Array(0), size: new Float64Array(0) }), code: "INVALID_ARGUMENT", mentions: ["0 rows", "send at least one row"] },
  { name: "a timestamp in nanoseconds sent as int64 (year > 2200)", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0 * 1000n), price: Float64Array.of(1), size: Float64Array.of(1) }), code: "INVALID_ARGUMENT", mentions: ["out of range", "unit"] },
  { name: "an int64 beyond 2^53", subject: "px.t2.ingest.small", payload: () => ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), qty: BigInt64Array.of(2n ** 60n), flag: { values: [true], type: new Bool() }, f32: { values: [1], type: new Float32() }, n32: { values: [1], type: new Int32() } }), code: "INVALID_ARGUMENT", mentions: ["column qty row 0", "2^53"] },
  { name: "an unknown table", subject: "px.default.ingest.nope", payload: () => goodTrades(), code: "NOT_FOUND", mentions: ["tenant default has no table nope", "trades"] },
  { name: "an unknown tenant", subject: "px.ghost.ingest.trades", payload: () => goodTrades(), code: "NOT_FOUND", mentions: ["tenant ghost is unknown"] },
  { name: "an oversized batch", subject: "px.t2.ingest.small", payload: () => ipcOf({ sym: Array(11).fill("A"), ts: BigInt64Array.from({ length: 11 }, () => T0), qty: new BigInt64Array(11), flag: { values: Array(11).fill(true), type: new Bool() }, f32: new Float32Array(11), n32: new Int32Array(11) }), code: "RESOURCE_EXHAUSTED", mentions: ["11 rows", "maxBatchRows 10", "split"] },
  { name: "corrupt Arrow bytes", subject: "px.default.ingest.trades", payload: () => Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 255), code: "INVALID_ARGUMENT", mentions: ["not a valid Arrow IPC stream"] },
  { name: "a truncated Arrow stream", subject: "px.default.ingest.trades", payload: () => goodTrades(50).subarray(0, 333), code: "INVALID_ARGUMENT", mentions: ["Arrow"] },
  { name: "a null symbol", subject: "px.default.ingest.trades", payload: () => ipcOf({ sym: { values: ["A", null], type: new Utf8() }, ts: BigInt64Array.of(T0, T0), price: Float64Array.of(1, 2), size: Float64Array.of(1, 1) }), code: "INVALID_ARGUMENT", mentions: ["null symbol"] },
  { name: "a malformed producer header", subject: "px.default.ingest.trades", payload: () => goodTrades(), headers: { "Px-Producer-Id": "p", "Px-Producer-Seq": "minus-one" }, code: "INVALID_ARGUMENT", mentions: ["Px-Producer-Seq", "unsigned 64-bit"] },
];

describe("ingest - bad input", () => {
  it.each(badCases)("validation - $name is rejected with a clear error and nothing reaches the WAL", async (c) => {
    const tenant = c.subject.split(".")[1]!;
    const countOf = async () => (tenant === "ghost" ? 0 : walMessageCount(f.nc, tenant));
    const before = await countOf();
    const reply = await send(c.subject, c.payload(), c.headers);
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe(c.code);
    for (const m of c.mentions) expect(reply.error.message).toContain(m);
    expect(await countOf()).toBe(before);
    // The gateway keeps serving.
    const ok = await send("px.default.ingest.trades", goodTrades());
    expect(ok.ok).toBe(true);
  });

  it("fire-and-forget - a bad plain publish is counted and reported on the error subject", async () => {
    const sub = f.nc.subscribe("px.default.ingest_errors.trades", { max: 1 });
    const before = node.stats().fireAndForgetFailures ?? 0;
    f.nc.publish("px.default.ingest.trades", ipcOf({ sym: ["A"], ts: BigInt64Array.of(T0), price: Float64Array.of(1) }));
    for await (const m of sub) {
      const r = JSON.parse(dec.decode(m.data)) as IngestReply;
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toContain("column size is missing");
    }
    expect((node.stats().fireAndForgetFailures ?? 0) - before).toBe(1);
  });
});
