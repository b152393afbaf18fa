// Snapshot data format 2 (src/snapshot/columnar.ts): it round-trips a hot set
// exactly (every chunk size, seam rows, empty tables), a format-1 snapshot
// (release 0.1) still loads to the same table, columns added to the spec
// since read as their defaults, and any damaged length or run is refused as
// corrupt rather than loaded.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { SnapshotManifest } from "../../protocols/codec.js";
import { manifestOf } from "./manifest.js";
import { HotTable } from "../../src/hotset/index.js";
import type { HotTableColumns } from "../../src/hotset/index.js";
import { decodeSnapshot, encodeSnapshot as encodeAnyFormat, SnapshotCorruptError, snapshotPartsV1 } from "../../src/snapshot/codec.js";
import { TRADES, trades } from "../hotset/fixtures.js";

/** These tests are of format 2 (format 3, packed.test.ts, is format 2 compressed): written explicitly, as a release before 3 did. */
const encodeSnapshot = (spec: TableSpec, cols: HotTableColumns, chunkRows?: number): ReturnType<typeof encodeAnyFormat> => encodeAnyFormat(spec, cols, chunkRows, 2);

function sample(): HotTable {
  const t = new HotTable(TRADES, { chunkRows: 4, firstChunkRows: 2, nextChunkRows: 2 });
  t.apply(1, trades(["B", 10, 1], ["A", 11, 2], ["B", 12, 3], ["C", 5, 4]));
  t.apply(2, trades(["A", 9, 5], ["B", 12, 6], ["B", 30, 7], ["A", 40, 8]));
  t.apply(3, trades(["D", 1, 9], ["A", 41, 10], ["B", 31, 11]));
  // Evicting moves the last evicted row of a symbol into the seam cache.
  t.evict(2, 11);
  return t;
}

const plain = (c: HotTableColumns): unknown => JSON.parse(JSON.stringify(c, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v)));

describe("snapshot data format 2", () => {
  it.each([1, 2, 3, 5, 1 << 20])("columnar - round trip with chunks of %i rows", (chunkRows) => {
    const t = sample();
    const enc = encodeSnapshot(TRADES, t.exportColumns(), chunkRows);
    const back = decodeSnapshot(TRADES, manifestOf(t, enc, 2), enc.data);
    expect(plain(back)).toEqual(plain(t.exportColumns()));
    expect(back.series.some((s) => s.seam !== null)).toBe(true);
  });

  it("columnar - an empty table", () => {
    const t = new HotTable(TRADES);
    const enc = encodeSnapshot(TRADES, t.exportColumns());
    expect(plain(decodeSnapshot(TRADES, manifestOf(t, enc, 2), enc.data))).toEqual(plain(t.exportColumns()));
  });

  it("columnar - a data object at an odd offset (as read from a larger buffer) still loads", () => {
    const t = sample();
    const enc = encodeSnapshot(TRADES, t.exportColumns(), 3);
    // Both kinds: a Buffer (what the object store client returns; its slice() is a view, not a copy) and a plain Uint8Array.
    for (const odd of [Buffer.alloc(enc.data.length + 3).subarray(3), new Uint8Array(enc.data.length + 3).subarray(3)]) {
      odd.set(enc.data);
      expect(plain(decodeSnapshot(TRADES, manifestOf(t, enc, 2), odd))).toEqual(plain(t.exportColumns()));
    }
  });

  it("columnar - a format-1 snapshot (release 0.1) loads to the same table", () => {
    const t = sample();
    const parts = [...(function* () {
      const g = snapshotPartsV1(TRADES, t.exportColumns(), 3);
      let r = g.next();
      const out: Uint8Array[] = [];
      while (r.done !== true) {
        out.push(r.value);
        r = g.next();
      }
      yield { data: Buffer.concat(out), ...r.value };
    })()][0]!;
    const enc = { ...parts, sha256: createHash("sha256").update(parts.data).digest("hex") };
    expect(plain(decodeSnapshot(TRADES, manifestOf(t, enc, 1), enc.data))).toEqual(plain(t.exportColumns()));
  });

  it("columnar - columns added to the spec since the snapshot read as their defaults", () => {
    const v1 = parseTableSpec({ name: "q", columns: [{ name: "bid", type: "float64" }] });
    const v2 = parseTableSpec({ name: "q", version: 2, columns: [{ name: "bid", type: "float64" }, { name: "lots", type: "int32", default: 7, since: 2 }] });
    const t = new HotTable(v1);
    t.apply(1, { rows: 2, symbols: ["A"], symbolIndex: Uint32Array.of(0, 0), ts: Float64Array.of(1, 2), values: [Float64Array.of(1.5, 2.5)] });
    const enc = encodeSnapshot(v1, t.exportColumns());
    const back = decodeSnapshot(v2, manifestOf(t, enc, 2, 1), enc.data);
    expect(Array.from(back.series[0]!.values[0]!)).toEqual([1.5, 2.5]);
    expect(Array.from(back.series[0]!.values[1]!)).toEqual([7, 7]);
  });

  it("columnar - damaged lengths, runs or counts are refused as corrupt", () => {
    const t = sample();
    const enc = encodeSnapshot(TRADES, t.exportColumns(), 3);
    const m = manifestOf(t, enc, 2);
    const damaged = (at: number, value: number): Error => {
      const data = Buffer.from(enc.data);
      data.writeUInt32LE(value, at);
      // The SHA-256 would catch this first; the structure checks are what stands when it matches (a bug, not a disk).
      const sha = createHash("sha256").update(data).digest("hex");
      try {
        decodeSnapshot(TRADES, { ...m, dataSha256: sha } as SnapshotManifest, data);
      } catch (e) {
        return e as Error;
      }
      throw new Error(`byte ${at} = ${value} was accepted`);
    };
    for (const [at, v] of [[0, 999_999], [12, 4], [16, 9], [20, 9], [24, 99], [28, 2]] as const) expect(damaged(at, v)).toBeInstanceOf(SnapshotCorruptError);
    expect(() => decodeSnapshot(TRADES, { ...m, chunkRows: [...m.chunkRows, 1n] } as SnapshotManifest, enc.data)).toThrow(SnapshotCorruptError);
  });
});
