// Ingest plausibility window (issue 21.5) and empty batches (21.9): a time column in
// the wrong unit is refused with a message naming the column, the value, the rule
// and the unit hint; a table spec can widen the window for backfills.
import { describe, expect, it } from "vitest";
import { encodeTickIpc, encodeTickIpcByBucket } from "../../src/codec/ipcwrite.js";
import { prepareBatch } from "../../src/ingest/prepare.js";
import { BatchRejected } from "../../src/codec/arrow.js";
import { SpecError, parseTableSpec } from "../../protocols/tablespec.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { ipcOf } from "../helpers/arrow.js";

const trades = parseTableSpec({ name: "trades", shards: 4, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const NOW_MS = Date.UTC(2026, 11, 4, 12, 0, 0);
const NOW_US = NOW_MS * 1000;

function batchAt(tsMicros: number[]): TickBatch {
  return {
    rows: tsMicros.length,
    symbols: ["AAPL", "MSFT"],
    symbolIndex: Uint32Array.from(tsMicros.map((_, i) => i % 2)),
    ts: Float64Array.from(tsMicros),
    values: [Float64Array.from(tsMicros.map(() => 1.5)), Float64Array.from(tsMicros.map(() => 100))],
  } as unknown as TickBatch;
}

function refusal(fn: () => unknown): BatchRejected {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BatchRejected);
    return e as BatchRejected;
  }
  throw new Error("expected a refusal");
}

describe("ingest - plausible tick times", () => {
  it("plausible - seconds, milliseconds and nanoseconds sent as int64 are refused with the unit hint", () => {
    const cases: [string, bigint][] = [
      ["seconds", BigInt(NOW_MS / 1000)],
      ["milliseconds", BigInt(NOW_MS)],
      ["nanoseconds", BigInt(NOW_MS) * 1_000_000n],
    ];
    for (const [unit, raw] of cases) {
      const bytes = ipcOf({ sym: ["AAPL"], ts: BigInt64Array.of(raw), price: [1.5], size: [100] });
      const e = refusal(() => prepareBatch("default", trades, bytes, undefined, undefined, NOW_US));
      expect(e.code, unit).toBe("INVALID_ARGUMENT");
      expect(e.message, unit).toMatch(/check the unit/);
      if (unit !== "nanoseconds") {
        // Nanoseconds overflow the microsecond range first; s and ms name the column, the value and the rule.
        expect(e.message, unit).toContain(`column ts row 0: ${raw}`);
        expect(e.message, unit).toContain("1990-01-01 (timeBounds.minTs)");
      }
    }
  });

  it("plausible - microseconds now are accepted, more than a day ahead is refused, in both ingest paths", () => {
    const ok = batchAt([NOW_US - 1_000_000, NOW_US]);
    expect(prepareBatch("default", trades, encodeTickIpc(trades, ok), undefined, undefined, NOW_US).rows).toBe(2);
    expect(prepareBatch("default", trades, encodeTickIpcByBucket(trades, ok, 4), undefined, undefined, NOW_US).rows).toBe(2);
    const ahead = batchAt([NOW_US, NOW_US + 86_400_000_000 + 1]);
    for (const bytes of [encodeTickIpc(trades, ahead), encodeTickIpcByBucket(trades, ahead, 4)]) {
      const e = refusal(() => prepareBatch("default", trades, bytes, undefined, undefined, NOW_US));
      expect(e.message).toMatch(/column ts row 1: .* is more than 86400 s ahead .*timeBounds.maxFutureSeconds.*check the unit/);
    }
    const old = batchAt([Date.UTC(1985, 0, 1) * 1000]);
    expect(refusal(() => prepareBatch("default", trades, encodeTickIpcByBucket(trades, old, 4), undefined, undefined, NOW_US)).message).toMatch(/1985-01-01T00:00:00.000Z\) is before .*1990-01-01/);
  });

  it("plausible - a table spec widens the window for a backfill", () => {
    const backfill = parseTableSpec({ name: "hist", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }], timeBounds: { minTs: "1980-01-01", maxFutureSeconds: 7 * 86_400 } });
    const b = batchAt([Date.UTC(1985, 0, 1) * 1000, NOW_US + 3 * 86_400_000_000]);
    expect(prepareBatch("default", backfill, encodeTickIpc(backfill, b), undefined, undefined, NOW_US).rows).toBe(2);
    // The normalized spec round-trips (specs are stored in KV as JSON and parsed again).
    expect(parseTableSpec(JSON.parse(JSON.stringify(backfill)))).toEqual(backfill);
    expect(() => parseTableSpec({ name: "bad", columns: [{ name: "p", type: "float64" }], timeBounds: { minTs: "yesterday" } })).toThrow(SpecError);
  });
});

describe("ingest - empty batch", () => {
  it("empty - a batch with 0 rows is refused, not acked with LSNs that do not exist", () => {
    const bytes = encodeTickIpc(trades, batchAt([]));
    const e = refusal(() => prepareBatch("default", trades, bytes, { id: "p", seq: 1n }, undefined, NOW_US));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toMatch(/0 rows; send at least one row/);
  });
});
