// Feeds - a record's update larger than one message goes out in parts
// (src/feed/parts.ts): the parts hold the record's rows once and in order, the
// last one carries the record's offset, and a runner resumed from any part's
// offset sends exactly the rows after it, however the rest is cut (another
// byte limit: a node of another max_payload); so does a last-by or bars
// subscription resumed from any part of a snapshot. Negative controls:
// resuming from the position before the record without the part's row count
// sends the part's rows again, and from a snapshot's position without its
// part the rest of the state is missing; the comparisons see both.
import { describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { FeedRunner, FeedSession, afterTail, decodeOffset, encodeOffset, outputPlace, placeAtOrBefore, planFeed, rowsHeader, splitBatch } from "../../src/feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan } from "../../src/feed/index.js";
import { tableBytes } from "../../src/query/index.js";
import type { OutTable } from "../../src/query/index.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(11, { records: 12, symbols: 40, rowsPerRecord: 300 });
const specOf = (t: string) => w.specs.find((s) => s.name === t);
const tables = () => w.specs.map((s) => s.name);
const plan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query }, specOf, tables);

const KINDS: Record<string, Record<string, unknown>> = {
  raw: { op: "range", table: "trades" },
  rolling: { op: "rolling", table: "trades", window: "1s", aggregates: [{ fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.3 }] },
  asof: { op: "asof", table: "trades", right: { table: "quotes" } },
};

/** Each row as text, its symbols resolved (a part's dictionary is its own). */
function rowsOf(t: OutTable): string[] {
  return Array.from({ length: t.rows }, (_, i) => JSON.stringify(t.columns.map((c) => (c.valid !== undefined && c.valid[i] === 0 ? null : c.field.kind === "sym" ? t.symbols[c.data[i]!] : c.data[i]))));
}

/** The runner's output over every record, each batch cut at `max` bytes. */
function run(p: FeedPlan, from: FeedOffset | undefined, max: number): FeedBatch[] {
  const r = new FeedRunner(p, from);
  return w.records.flatMap((rec) => {
    const b = r.push(rec);
    return b === undefined ? [] : splitBatch(b, max, tableBytes);
  });
}

const MAX = 4_000;

describe("feeds - a record's update in parts", () => {
  for (const [kind, query] of Object.entries(KINDS)) {
    it(`${kind} - the parts hold the record's rows once and in order, each within the limit, the last with the record's offset`, () => {
      const p = plan(query);
      const whole = run(p, undefined, Infinity);
      const parts = run(p, undefined, MAX);
      expect(parts.length).toBeGreaterThan(whole.length * 3);
      expect(parts.flatMap((b) => rowsOf(b.table))).toEqual(whole.flatMap((b) => rowsOf(b.table)));
      for (const b of parts) expect(tableBytes(b.table)).toBeLessThanOrEqual(MAX);
      // Whole records' offsets are the parts' last ones, in order.
      expect(parts.filter((b) => b.offset.part === undefined).map((b) => b.offset)).toEqual(whole.map((b) => b.offset));
      const places = parts.map((b) => outputPlace(b.kind, b.offset));
      for (let i = 1; i < places.length; i++) expect(placeAtOrBefore(places[i]!, places[i - 1]!), `place ${i} after ${i - 1}`).toBe(false);
      // Every message of a record that was cut names its rows; a record sent whole does not.
      const fit = whole.filter((b) => tableBytes(b.table) <= MAX).length;
      expect(parts.filter((b) => rowsHeader(b) !== undefined).length).toBe(parts.length - fit);
      expect(rowsHeader(whole[0]!)).toBeUndefined();
    });

    it(`${kind} - resumed from every part's offset, the rows continue exactly, cut at another limit too`, () => {
      const p = plan(query);
      const parts = run(p, undefined, MAX);
      const all = parts.map((b) => rowsOf(b.table));
      for (let k = 0; k < parts.length; k += 5) {
        const off = decodeOffset(encodeOffset(parts[k]!.offset), p.fingerprint, [p.left, ...(p.right ? [p.right] : [])]);
        const rest = all.slice(k + 1).flat();
        expect(run(p, off, MAX).flatMap((b) => rowsOf(b.table)), `from part ${k}`).toEqual(rest);
        expect(run(p, off, MAX * 3).flatMap((b) => rowsOf(b.table)), `from part ${k}, cut at ${MAX * 3}`).toEqual(rest);
      }
    });
  }

  it("negative control - from the position before the record, without the part's row count, the part's rows come again", () => {
    const p = plan(KINDS.raw!);
    const parts = run(p, undefined, MAX);
    const k = parts.findIndex((b, i) => i > 3 && b.offset.part !== undefined);
    const short: FeedOffset = { feed: p.fingerprint, lsn: parts[k]!.offset.lsn };
    const rest = parts.slice(k + 1).flatMap((b) => rowsOf(b.table));
    const got = run(p, short, MAX).flatMap((b) => rowsOf(b.table));
    expect(got).not.toEqual(rest);
    expect(got.length).toBe(rest.length + parts[k]!.firstRow! + parts[k]!.table.rows);
  });

  it("a writer whose subject ends in a part of the record sends the rest of its rows, whatever the cut", () => {
    const p = plan(KINDS.raw!);
    const r = new FeedRunner(p);
    const b = r.push(w.records[0]!)!;
    const parts = splitBatch(b, MAX, tableBytes);
    expect(parts.length).toBeGreaterThan(3);
    const tail = { seq: 7, place: outputPlace("update", parts[1]!.offset) };
    const rest = afterTail(b, tail);
    expect(rest.firstRow).toBe(parts[1]!.offset.part!.rows);
    expect(splitBatch(rest, MAX * 2, tableBytes).flatMap((x) => rowsOf(x.table))).toEqual(parts.slice(2).flatMap((x) => rowsOf(x.table)));
    // Another record's tail leaves the batch whole.
    expect(afterTail(b, { seq: 7, place: [2 * 99 - 0.5, 10] })).toBe(b);
  });

  for (const [kind, query] of Object.entries({ lastBy: { op: "lastBy", table: "trades" }, bars: { op: "bars", table: "trades", bucket: "1s" } })) {
    it(`${kind} - a snapshot in parts: the state's rows once, between its record's update and the next; a subscription resumed inside it gets the rest of it, then the updates`, () => {
      const p = plan(query);
      const tables = [p.left];
      // A subscription from "snapshot" with the WAL at the 6th record: the state there, then every update after it.
      const lastLsn = w.records[5]!.lsn;
      const run = (from: Parameters<typeof decodeOffset>[0] | "snapshot", max: number): FeedBatch[] => {
        const s = new FeedSession(p, { from: from === "snapshot" ? "snapshot" : decodeOffset(from, p.fingerprint, tables), lastLsn, durable: false, maxBuffer: 1e6, conflate: false });
        for (const rec of w.records) if (rec.lsn >= s.readFrom) s.push(rec);
        return s.drain().flatMap((b) => splitBatch(b, max, tableBytes));
      };
      const whole = run("snapshot", Infinity);
      const snap = whole[0]!;
      expect(snap.kind).toBe("snapshot");
      const parts = run("snapshot", 1_500);
      const snapParts = parts.filter((b) => b.kind === "snapshot");
      expect(snapParts.length).toBeGreaterThan(2);
      expect(snapParts.flatMap((b) => rowsOf(b.table))).toEqual(rowsOf(snap.table));
      expect(snapParts.map((b) => rowsHeader(b)!.split("/")[1])).toEqual(snapParts.map(() => String(snap.table.rows)));
      expect(snapParts.at(-1)!.offset).toEqual(snap.offset);
      const places = parts.map((b) => outputPlace(b.kind, b.offset));
      for (let i = 1; i < places.length; i++) expect(placeAtOrBefore(places[i]!, places[i - 1]!), `place ${i} after ${i - 1}`).toBe(false);
      expect(placeAtOrBefore(outputPlace("update", { feed: "f", lsn: { x: lastLsn } }), places[0]!)).toBe(true);
      const all = parts.map((b) => rowsOf(b.table));
      for (let k = 0; k < snapParts.length; k++) {
        const rest = all.slice(k + 1).flat();
        expect(run(encodeOffset(parts[k]!.offset), 1_500).flatMap((b) => rowsOf(b.table)), `from part ${k}`).toEqual(rest);
        expect(run(encodeOffset(parts[k]!.offset), 4_000).flatMap((b) => rowsOf(b.table)), `from part ${k}, cut at 4000`).toEqual(rest);
      }
      // Negative control: the snapshot's position without its part sends the updates after it, not the rest of the state.
      const bare = run(encodeOffset({ feed: p.fingerprint, lsn: parts[0]!.offset.lsn }), 1_500).flatMap((b) => rowsOf(b.table));
      expect(bare).not.toEqual(all.slice(1).flat());
      expect(bare).toEqual(parts.filter((b) => b.kind === "update").flatMap((b) => rowsOf(b.table)));
    });
  }

  it("bad input - a part that is not [record LSN past the offset, rows > 0] is refused by name", () => {
    const p = plan(KINDS.raw!);
    const tok = (part: unknown) => Buffer.from(JSON.stringify({ v: 1, f: p.fingerprint, l: { "trades/0": 5, "trades/1": 5 }, p: part })).toString("base64url");
    for (const bad of [[5, 10], [6, 0], "x", [6], [6, 10, 1], [5, 10, 2], [5, 10, 1, 1]]) {
      expect(() => decodeOffset(tok(bad), p.fingerprint, [p.left])).toThrow(QueryError);
      expect(() => decodeOffset(tok(bad), p.fingerprint, [p.left])).toThrow(/the token's part .* is not \[record LSN past the offset, rows sent > 0\] nor \[the offset's LSN, rows sent > 0, 1\]/);
    }
    expect(decodeOffset(tok([6, 10]), p.fingerprint, [p.left]).part).toEqual({ lsn: 6, rows: 10 });
    expect(decodeOffset(tok([5, 10, 1]), p.fingerprint, [p.left]).part).toEqual({ lsn: 5, rows: 10, snapshot: true });
  });
});
