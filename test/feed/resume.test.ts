// Feeds - resume from an offset is exactly once: a runner started from the
// offset of any batch of an uninterrupted run sends exactly the batches that
// followed it (no gap, no duplicate). Negative control: a resume that ignores
// the offset's suppression (the offset one record short) is caught as a duplicate.
// Also: the feed definition's bad input gets named refusals.
import { describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { decodeOffset, encodeOffset, planFeed, FeedRunner, resumeSeq } from "../../src/feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan } from "../../src/feed/index.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(7, { records: 20, symbols: 5, rowsPerRecord: 15 });
const specOf = (t: string) => w.specs.find((s) => s.name === t);
const tables = () => w.specs.map((s) => s.name);
const plan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query }, specOf, tables);

const KINDS: Record<string, Record<string, unknown>> = {
  raw: { op: "range", table: "trades" },
  lastBy: { op: "lastBy", table: "quotes" },
  bars: { op: "bars", table: "trades", bucket: "1s" },
  rolling: { op: "rolling", table: "trades", window: "1s", aggregates: [{ fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.3 }] },
  asof: { op: "asof", table: "trades", right: { table: "quotes" } },
};

/** A batch as comparable text (its rows and offset). */
const text = (b: FeedBatch): string => JSON.stringify({ rows: b.table.rows, cols: b.table.columns.map((c) => Array.from(c.data as ArrayLike<number>)), syms: b.table.symbols, off: b.offset.lsn });

function resumed(p: FeedPlan, from: FeedOffset | undefined): string[] {
  const r = new FeedRunner(p, from);
  // Resuming re-reads the WAL from the first sequence the offset needs (all of it: state is rebuilt by folding).
  return w.records.flatMap((rec) => {
    const b = r.push(rec);
    return b === undefined ? [] : [text(b)];
  });
}

describe("feeds - resume from an offset", () => {
  for (const [kind, query] of Object.entries(KINDS)) {
    it(`${kind} - resumed at every batch's offset, the output continues exactly`, () => {
      const p = plan(query);
      const full = new FeedRunner(p);
      const batches = w.records.map((rec) => full.push(rec)).filter((b): b is FeedBatch => b !== undefined);
      expect(batches.length).toBeGreaterThan(5);
      const all = batches.map(text);
      for (let k = 0; k < batches.length; k += 3) {
        const token = encodeOffset(batches[k]!.offset);
        const off = decodeOffset(token, p.fingerprint, [p.left, ...(p.right ? [p.right] : [])]);
        expect(resumed(p, off)).toEqual(all.slice(k + 1));
      }
    });
  }

  it("negative control - an offset one record short duplicates a batch, and the comparison sees it", () => {
    const p = plan(KINDS.raw!);
    const full = new FeedRunner(p);
    const batches = w.records.map((rec) => full.push(rec)).filter((b): b is FeedBatch => b !== undefined);
    const k = 4;
    const short: FeedOffset = { feed: p.fingerprint, lsn: Object.fromEntries(Object.entries(batches[k]!.offset.lsn).map(([s, v]) => [s, v - 1])) };
    expect(resumed(p, short)).not.toEqual(batches.slice(k + 1).map(text));
    expect(resumed(p, short).length).toBe(batches.length - k);
  });

  it("offset - resumeSeq is the lowest shard entry + 1", () => {
    expect(resumeSeq({ feed: "x", lsn: { "trades/0": 10, "trades/1": 7 } })).toBe(8);
  });
});

describe("feeds - bad input is refused by name", () => {
  const refusal = (f: () => unknown): QueryError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(QueryError);
      return e as QueryError;
    }
    return expect.fail("not refused");
  };
  it("unknown table, unknown column, other tenant, window 0, batch-only fields, non-feed ops", () => {
    expect(refusal(() => plan({ op: "range", table: "nope" })).message).toMatch(/tenant qt has no table nope \(its tables: quotes, trades\)/);
    expect(refusal(() => plan({ op: "range", table: "nope" })).code).toBe("NOT_FOUND");
    expect(refusal(() => plan({ op: "range", table: "trades", columns: ["px"] })).message).toMatch(/table trades has no column "px"/);
    expect(refusal(() => plan({ op: "range", table: "other.trades" })).code).toBe("PERMISSION_DENIED");
    expect(refusal(() => plan({ op: "rolling", table: "trades", window: 0, aggregates: [{ fn: "count" }] })).message).toMatch(/window.*out of range/);
    expect(refusal(() => plan({ op: "rolling", table: "trades", window: "0s", aggregates: [{ fn: "count" }] })).message).toMatch(/window/);
    expect(refusal(() => plan({ op: "range", table: "trades", t0: 1 })).message).toMatch(/feed query field t0: a feed is a standing query/);
    expect(refusal(() => plan({ op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }] })).message).toMatch(/op groupBy: not a feed operator/);
    expect(refusal(() => plan({ op: "asof", table: "trades", right: { table: "quotes" }, direction: "forward" })).message).toMatch(/direction "backward"/);
    expect(refusal(() => plan({ op: "bars", table: "trades", bucket: "1s", fill: "previous" })).message).toMatch(/fill/);
  });

  it("an offset of another feed, or a malformed one", () => {
    const a = plan(KINDS.raw!);
    const b = plan(KINDS.bars!);
    const token = encodeOffset({ feed: a.fingerprint, lsn: { "trades/0": 3, "trades/1": 3 } });
    expect(refusal(() => decodeOffset(token, b.fingerprint, [b.left])).message).toMatch(/belongs to feed .*not to this feed/);
    expect(refusal(() => decodeOffset("garbage!", a.fingerprint, [a.left])).message).toMatch(/not a feed offset/);
    expect(decodeOffset(token, a.fingerprint, [a.left]).lsn).toEqual({ "trades/0": 3, "trades/1": 3 });
  });
});
