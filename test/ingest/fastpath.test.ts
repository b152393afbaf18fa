// The gateway fast path (batches already grouped by bucket in the WAL layout,
// forwarded without re-encoding) against the general path: same records, same
// rows, and on corrupt or rule-breaking input it never accepts what the
// general path rejects.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { tableFromIPC } from "apache-arrow";
import { create, toBinary } from "@bufbuild/protobuf";
import { encodeTickIpc, encodeTickIpcByBucket } from "../../src/codec/ipcwrite.js";
import type { BatchRejected } from "../../src/codec/arrow.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { tryFastPrepare } from "../../src/ingest/fastpath.js";
import { prepareBatch, prepareBatchGeneral } from "../../src/ingest/prepare.js";
import type { PreparedBatch } from "../../src/ingest/prepare.js";
import { decodeWalRecord, walRecordPrefix, walRecordPrefixOf } from "../../protocols/codec.js";
import { WalRecordSchema, RecordKind } from "../../protocols/gen/proxist/v1/wal_pb.js";
import { bucketOf } from "../../protocols/routing.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";

const trades = parseTableSpec({ name: "trades", shards: 4, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const mixed = parseTableSpec({
  name: "mixed",
  shards: 3,
  columns: [
    { name: "qty", type: "int64" },
    { name: "flag", type: "bool" },
    { name: "f32", type: "float32", allowNonFinite: true },
    { name: "n32", type: "int32" },
  ],
});
const producer = { id: "p1", seq: 42n };

/** Rows of every record of a plan, per bucket, as comparable strings. */
function rowsOf(spec: typeof trades, plan: PreparedBatch): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const a of plan.appends) {
    const rec = decodeWalRecord(a.record);
    expect(rec.bucket).toBe(a.bucket);
    expect(rec.rows).toBe(a.rows);
    const b = decodeTickBatch(spec, rec.payload, "wal");
    const rows: string[] = [];
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < b.rows; i++) {
      const sym = b.symbols[b.symbolIndex[i]!]!;
      expect(bucketOf(sym, spec.shards)).toBe(a.bucket);
      min = Math.min(min, b.ts[i]!);
      max = Math.max(max, b.ts[i]!);
      rows.push(JSON.stringify([sym, b.ts[i], ...b.values.map((v) => (Number.isNaN(v[i]) ? "NaN" : v[i]))]));
    }
    expect(Number(rec.minTsMicros)).toBe(min);
    expect(Number(rec.maxTsMicros)).toBe(max);
    expect(rec.producerId).toBe(producer.id);
    expect(rec.producerSeq).toBe(producer.seq);
    out.set(a.bucket, rows);
  }
  return out;
}

function mixedBatch(n: number, seed: number): TickBatch {
  const rnd = (k: number) => Math.abs(Math.sin(seed * 9301 + k * 49297)) % 1;
  const symbols = ["A", "BB", "ÉCU", "D", "E€", "F", "G"];
  return {
    rows: n,
    symbols,
    symbolIndex: Uint32Array.from({ length: n }, (_, i) => Math.floor(rnd(i) * symbols.length)),
    ts: Float64Array.from({ length: n }, (_, i) => 1.7e15 + i),
    values: [
      Float64Array.from({ length: n }, (_, i) => Math.round((rnd(i + 1) - 0.5) * 2 ** 52)),
      Uint8Array.from({ length: n }, (_, i) => (rnd(i + 2) > 0.5 ? 1 : 0)),
      Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? Number.NaN : rnd(i + 3))),
      Int32Array.from({ length: n }, (_, i) => Math.floor((rnd(i + 4) - 0.5) * 2 ** 31)),
    ],
  };
}

describe("ingest - fast path", () => {
  it("by-bucket encoding - any Arrow reader reads it as the batch grouped by bucket", () => {
    const b = new RandomWalk(symbolNames(50), 3, 1.7e15).trades(300, 1e6);
    const bytes = encodeTickIpcByBucket(trades, b, trades.shards);
    const t = tableFromIPC(bytes);
    expect(t.numRows).toBe(300);
    const want = Array.from({ length: 300 }, (_, i) => [b.symbols[b.symbolIndex[i]!]!, b.ts[i]!, b.values[0]![i]!] as const);
    const got = Array.from({ length: 300 }, (_, i) => [t.getChild("sym")!.get(i) as string, Number(t.getChild("ts")!.get(i) as bigint), t.getChild("price")!.get(i) as number] as const);
    // grouped by bucket, ascending, and in the original order within a bucket
    const stable = [...want].map((r, i) => ({ r, i })).sort((x, y) => bucketOf(x.r[0], 4) - bucketOf(y.r[0], 4) || x.i - y.i).map((x) => x.r);
    expect(got).toEqual(stable);
    const dec = decodeTickBatch(trades, bytes, "x");
    expect(Array.from({ length: 300 }, (_, i) => dec.symbols[dec.symbolIndex[i]!])).toEqual(stable.map((r) => r[0]));
  });

  it("equivalence - the fast path plans the same rows per bucket as the general path", () => {
    const walk = new RandomWalk(symbolNames(200), 11, 1.7e15);
    for (let k = 0; k < 20; k++) {
      const b = walk.trades(1 + k * 37, 1e6);
      const bytes = encodeTickIpcByBucket(trades, b, trades.shards);
      const fast = tryFastPrepare("default", trades, bytes, producer);
      expect(fast, `batch ${k}`).toBeDefined();
      const slow = prepareBatchGeneral("default", trades, encodeTickIpc(trades, b), producer);
      expect(fast!.rows).toBe(slow.rows);
      expect(fast!.appends.map((a) => [a.bucket, a.subject, a.msgId, a.rows])).toEqual(slow.appends.map((a) => [a.bucket, a.subject, a.msgId, a.rows]));
      expect(rowsOf(trades, fast!)).toEqual(rowsOf(trades, slow));
    }
    for (let k = 0; k < 10; k++) {
      const b = mixedBatch(1 + k * 29, k);
      const bytes = encodeTickIpcByBucket(mixed, b, mixed.shards);
      const fast = tryFastPrepare("t", mixed, bytes, producer);
      expect(fast, `mixed batch ${k}`).toBeDefined();
      expect(rowsOf(mixed, fast!)).toEqual(rowsOf(mixed, prepareBatchGeneral("t", mixed, encodeTickIpc(mixed, b), producer)));
    }
  });

  it("unaligned input (a NATS payload inside a larger buffer) takes the fast path too", () => {
    const b = new RandomWalk(symbolNames(40), 2, 1.7e15).trades(100, 1e6);
    const bytes = encodeTickIpcByBucket(trades, b, trades.shards);
    const big = new Uint8Array(bytes.length + 5);
    big.set(bytes, 5);
    const fast = tryFastPrepare("default", trades, big.subarray(5), producer);
    expect(fast).toBeDefined();
    expect(rowsOf(trades, fast!)).toEqual(rowsOf(trades, tryFastPrepare("default", trades, bytes, producer)!));
  });

  it("rules - a batch breaking a rule is left to the general path, which names it", () => {
    const b = new RandomWalk(symbolNames(20), 4, 1.7e15).trades(50, 1e6);
    const cases: [string, (x: TickBatch) => TickBatch, string][] = [
      ["NaN", (x) => ({ ...x, values: [Float64Array.from(x.values[0]!, (v, i) => (i === 7 ? Number.NaN : v)), x.values[1]!] }), "NaN is not allowed"],
      ["old ts", (x) => ({ ...x, ts: Float64Array.from(x.ts, (v, i) => (i === 3 ? -1 : v)) }), "out of range"],
      ["empty symbol", (x) => ({ ...x, symbols: x.symbols.map((s, i) => (i === 0 ? "" : s)) }), "the symbol is empty"],
      ["long symbol", (x) => ({ ...x, symbols: x.symbols.map((s, i) => (i === 0 ? "X".repeat(300) : s)) }), "longer than 256 bytes"],
    ];
    for (const [name, mutate, message] of cases) {
      const bytes = encodeTickIpcByBucket(trades, mutate(b), trades.shards);
      expect(tryFastPrepare("default", trades, bytes, producer), name).toBeUndefined();
      expect(() => prepareBatch("default", trades, bytes, producer), name).toThrow(message);
    }
    const small = { ...trades, maxBatchRows: 10 };
    expect(tryFastPrepare("default", small, encodeTickIpcByBucket(small, b, 4), producer)).toBeUndefined();
    // another shard count than the gateway's: still correct, through the general path
    const bytes = encodeTickIpcByBucket(trades, b, 3);
    expect(tryFastPrepare("default", trades, bytes, producer)).toBeUndefined();
    // (rows grouped by the client's buckets first: the order within a symbol is kept, not across symbols)
    const sorted = (m: Map<number, string[]>) => new Map([...m].map(([k, v]) => [k, [...v].sort()]));
    expect(sorted(rowsOf(trades, prepareBatch("default", trades, bytes, producer)))).toEqual(sorted(rowsOf(trades, prepareBatchGeneral("default", trades, encodeTickIpc(trades, b), producer))));
  });

  it("fuzz - a corrupted batch the fast path accepts is one the general path accepts with the same rows", () => {
    const b = new RandomWalk(symbolNames(30), 8, 1.7e15).trades(64, 1e6);
    const good = encodeTickIpcByBucket(trades, b, trades.shards);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(good.length), fc.boolean(), (edits, cut, unaligned) => {
        let bytes = good.slice(0, Math.max(cut, good.length - 64));
        for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
        if (unaligned) {
          // inside a larger buffer with garbage around it (the fast path copies it to an aligned scratch)
          const big = new Uint8Array(bytes.length + 64).fill(0xab);
          big.set(bytes, 3);
          bytes = big.subarray(3, 3 + bytes.length);
        }
        const fast = tryFastPrepare("default", trades, bytes, producer);
        if (!fast) return;
        let slow: PreparedBatch;
        try {
          slow = prepareBatchGeneral("default", trades, bytes, producer);
        } catch (e) {
          expect.fail(`fast path accepted what the general path rejects: ${(e as BatchRejected).message}`);
        }
        expect(rowsOf(trades, fast)).toEqual(rowsOf(trades, slow));
      }),
      { numRuns: 3000, seed: 7 },
    );
  });

  it("wal record prefix - the hand-written envelope is byte for byte what protobuf-es writes", () => {
    const cases = [
      { tenant: "default", table: "trades", schemaVersion: 1, producerId: "p", producerSeq: 9n, bucket: 3, rows: 2, minTsMicros: 5n, maxTsMicros: 6n },
      { tenant: "tënant", table: "t", schemaVersion: 0, producerId: "", producerSeq: 0n, bucket: 0, rows: 1, minTsMicros: 0n, maxTsMicros: 1_700_000_000_000_000n },
      { tenant: "x", table: "y", schemaVersion: 7, producerId: "q", producerSeq: 2n ** 64n - 1n, bucket: 1, rows: 300, minTsMicros: -5n, maxTsMicros: 2n ** 62n },
    ];
    for (const c of cases) {
      const payload = Uint8Array.of(1, 2, 3, 4, 5);
      const want = toBinary(WalRecordSchema, create(WalRecordSchema, { ...c, payload, version: 1, kind: RecordKind.TICKS }));
      const head = walRecordPrefix(c, payload.length);
      expect(Uint8Array.from([...head, ...payload])).toEqual(want);
      const fast = walRecordPrefixOf(c.tenant, c.table, c.schemaVersion, c.producerId ? { id: c.producerId, seq: c.producerSeq } : undefined, c.bucket, c.rows, Number(c.minTsMicros), Number(c.maxTsMicros), payload.length);
      if (c.maxTsMicros < 2n ** 53n && c.minTsMicros >= 0n) expect(fast).toEqual(head);
    }
  });
});
