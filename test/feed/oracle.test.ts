// Feeds - each feed kind's output equals the batch query engine's answer over
// the same ticks (late ticks and equal timestamps included): a per-tick row
// equals the batch query's row over every tick acknowledged up to its record;
// a last-by or bar feed's state after each record equals the batch query over
// the ticks so far. Floating sums may differ in the last bits (different
// addition order): compared to 1e-9 relative; EMA, min, max, count, OHLC exactly.
import { describe, expect, it } from "vitest";
import { planFeed, FeedRunner } from "../../src/feed/index.js";
import type { FeedBatch, FeedPlan } from "../../src/feed/index.js";
import type { OutTable } from "../../src/query/index.js";
import { buildHot, TENANT, T_BASE, workload } from "../query/fixture.js";
import type { Tick, Workload } from "../query/fixture.js";

const w = workload(14, { records: 24, symbols: 6, rowsPerRecord: 25 });
const specOf = (t: string) => w.specs.find((s) => s.name === t);
const plan = (query: Record<string, unknown>, lateness?: string): FeedPlan => planFeed(TENANT, lateness === undefined ? { query } : { query, lateness }, specOf, () => w.specs.map((s) => s.name));

/** Rows of an OutTable as plain objects (null for invalid). */
function rowsOf(t: OutTable): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let k = 0; k < t.rows; k++) {
    const r: Record<string, unknown> = {};
    for (const c of t.columns) r[c.field.name] = c.valid !== undefined && c.valid[k] === 0 ? null : c.field.kind === "sym" ? t.symbols[c.data[k]!] : c.field.kind === "bool" ? c.data[k] === 1 : c.data[k];
    out.push(r);
  }
  return out;
}

const prefix = (n: number, wl: Workload = w): Workload => ({ ...wl, records: wl.records.slice(0, n) });
const batch = async (wl: Workload, query: Record<string, unknown>) => rowsOf((await buildHot(wl).engine(undefined).execute(TENANT, query)).table);

const close = (a: unknown, b: unknown): boolean => {
  if (typeof a !== "number" || typeof b !== "number") return a === b;
  return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
};
function expectRow(got: Record<string, unknown>, want: Record<string, unknown>, what: string): void {
  for (const [k, v] of Object.entries(want)) if (!close(got[k], v)) expect.fail(`${what}: column ${k}: feed ${String(got[k])}, batch ${String(v)}\nfeed  ${JSON.stringify(got)}\nbatch ${JSON.stringify(want)}`);
}

const keyLess = (a: Tick, b: Tick): number => a.ts - b.ts || a.lsn - b.lsn || a.row - b.row;
/** The table's ticks of the first n records in (ts, lsn, row) order: what a time-sorted batch answer's rows are. */
const ordered = (n: number, table: string, symbols?: readonly string[], wl: Workload = w): Tick[] => {
  const last = wl.records[n - 1]!.lsn;
  return wl.ticks.filter((t) => t.table === table && t.lsn <= last && (symbols === undefined || symbols.includes(t.sym))).sort(keyLess);
};

function run(p: FeedPlan, wl: Workload = w): { outs: (FeedBatch | undefined)[]; runner: FeedRunner } {
  const runner = new FeedRunner(p);
  return { outs: wl.records.map((r) => runner.push(r)), runner };
}

/** Per-tick kinds: every row of record n's output equals the batch query's row for that tick over the first n records. */
async function perTickMatches(p: FeedPlan, batchQuery: Record<string, unknown>, symbols?: readonly string[], wl: Workload = w): Promise<number> {
  const { outs } = run(p, wl);
  let checked = 0;
  for (let n = 1; n <= wl.records.length; n++) {
    const rec = wl.records[n - 1]!;
    const out = outs[n - 1];
    if (rec.table !== p.left.name) {
      expect(out).toBeUndefined();
      continue;
    }
    const want = await batch(prefix(n, wl), { ...batchQuery, sort: "time" });
    const ticks = ordered(n, p.left.name, symbols, wl);
    expect(want.length).toBe(ticks.length);
    const byRow = new Map<number, Record<string, unknown>>();
    ticks.forEach((t, k) => t.lsn === rec.lsn && byRow.set(t.row, want[k]!));
    const got = out === undefined ? [] : rowsOf(out.table);
    expect(got.length).toBe(byRow.size);
    for (const g of got) {
      expect(g._lsn).toBe(rec.lsn);
      expectRow(g, byRow.get(g._row as number)!, `${p.kind} record ${n} row ${String(g._row)}`);
      checked++;
    }
  }
  return checked;
}

describe("feeds - output equals the batch query", () => {
  it("workload has late ticks and equal timestamps", () => {
    const trades = w.ticks.filter((t) => t.table === "trades");
    const late = trades.filter((t, i) => trades.slice(0, i).some((u) => u.sym === t.sym && u.ts > t.ts));
    const ties = new Set(trades.map((t) => `${t.sym}@${t.ts}`));
    expect(late.length).toBeGreaterThan(10);
    expect(ties.size).toBeLessThan(trades.length);
  });

  it("raw - every wanted tick once, with the chosen columns, as the range query", async () => {
    const p = plan({ op: "range", table: "trades", symbols: ["S1", "S3", "NOPE"], columns: ["price"] });
    const { outs } = run(p);
    const got = outs.flatMap((o) => (o === undefined ? [] : rowsOf(o.table)));
    const ticks = ordered(w.records.length, "trades", ["S1", "S3"]);
    const want = await batch(w, { op: "range", table: "trades", symbols: ["S1", "S3", "NOPE"], columns: ["price"] });
    const key = (r: Record<string, unknown>) => `${String(r._lsn)}:${String(r._row)}`;
    const bykey = new Map(ticks.map((t, k) => [`${t.lsn}:${t.row}`, want[k]!]));
    expect(got.length).toBe(want.length);
    expect(new Set(got.map(key)).size).toBe(got.length);
    for (const g of got) expectRow(g, bykey.get(key(g))!, "raw");
    expect(Object.keys(got[0]!)).toEqual(["sym", "ts", "price", "_lsn", "_row"]);
  });

  it("rolling - time window sum/avg/min/max/count/stddev/vwap/ema per tick", async () => {
    const aggregates = [
      { fn: "sum", column: "size" },
      { fn: "avg", column: "price" },
      { fn: "min", column: "price" },
      { fn: "max", column: "price" },
      { fn: "count" },
      { fn: "stddev", column: "price" },
      { fn: "vwap", column: "price", weight: "size" },
      { fn: "ema", column: "price", alpha: 0.2 },
    ];
    const q = { op: "rolling", table: "trades", window: "2s", aggregates };
    expect(await perTickMatches(plan(q), q)).toBeGreaterThan(200);
  });

  it("rolling - row window with a symbol filter", async () => {
    const q = { op: "rolling", table: "trades", rows: 5, symbols: ["S2", "S4"], columns: ["size"], aggregates: [{ fn: "sum", column: "price" }, { fn: "vwap", column: "price" }, { fn: "ema", column: "size", alpha: 0.5 }] };
    expect(await perTickMatches(plan(q), q, ["S2", "S4"])).toBeGreaterThan(50);
  });

  it("rolling - a lateness shorter than the ticks' span: the buffers' fronts are dropped as the feed goes, time and row windows still equal the batch query", async () => {
    // 20 s of ticks, late ones up to 6 s: a 7 s lateness keeps every late tick in its window and drops the rest.
    const long = workload(15, { records: 60, symbols: 4, rowsPerRecord: 30 });
    const longPlan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query, lateness: "7s" }, (t) => long.specs.find((s) => s.name === t), () => long.specs.map((s) => s.name));
    const aggregates = [{ fn: "vwap", column: "price", weight: "size" }, { fn: "sum", column: "size" }, { fn: "count" }];
    for (const win of [{ window: "2s" }, { window: "300ms" }, { rows: 7 }]) {
      const q = { op: "rolling", table: "trades", ...win, aggregates };
      const p = longPlan(q);
      expect(await perTickMatches(p, q, undefined, long)).toBeGreaterThan(500);
      // Fronts were dropped: every symbol's buffer holds fewer rows than the symbol has ticks (EARLY's ticks stop early, its buffer is left as it is).
      const { runner } = run(p, long);
      const held = [...(runner.operator.save() as Map<string, { buf: { n: number } }>)].filter(([sym]) => sym !== "EARLY").map(([sym, st]) => st.buf.n - long.ticks.filter((t) => t.table === "trades" && t.sym === sym).length);
      expect(Math.max(...held), JSON.stringify(win)).toBeLessThan(0);
    }
  });

  it("asof - each trade with the prevailing quote acknowledged before it, with a tolerance", async () => {
    for (const tolerance of [undefined, "500ms"]) {
      const q = { op: "asof", table: "trades", right: { table: "quotes", columns: ["bid"] }, ...(tolerance === undefined ? {} : { tolerance }) };
      expect(await perTickMatches(plan(q), q)).toBeGreaterThan(200);
    }
  });

  it("lastBy - the state after each record equals the lastBy query over the ticks so far", async () => {
    const q = { op: "lastBy", table: "trades", columns: ["price"] };
    const { outs, runner } = run(plan(q));
    const state = new Map<string, Record<string, unknown>>();
    for (let n = 1; n <= w.records.length; n++) {
      for (const r of outs[n - 1] === undefined ? [] : rowsOf(outs[n - 1]!.table)) state.set(r.sym as string, r);
      if (w.records[n - 1]!.table !== "trades") continue;
      const want = await batch(prefix(n), q);
      expect([...state.keys()].sort()).toEqual(want.map((r) => r.sym));
      for (const r of want) expectRow(state.get(r.sym as string)!, r, `lastBy record ${n}`);
    }
    expect(rowsOf(runner.snapshot()!.table).map((r) => r.sym)).toEqual([...state.keys()].sort());
  });

  it("bars - open-bar updates and late revisions keep the bars equal to the bars query", async () => {
    const q = { op: "bars", table: "trades", bucket: "1s" };
    const { outs, runner } = run(plan(q));
    const state = new Map<string, Record<string, unknown>>();
    let revisions = 0;
    for (let n = 1; n <= w.records.length; n++) {
      for (const r of outs[n - 1] === undefined ? [] : rowsOf(outs[n - 1]!.table)) {
        const k = `${String(r.sym)}@${String(r.ts)}`;
        if (state.get(k)?.closed === true) revisions++;
        state.set(k, r);
      }
      if (w.records[n - 1]!.table !== "trades") continue;
      const want = await batch(prefix(n), { ...q, t0: T_BASE - 60_000_000 });
      expect(state.size).toBe(want.length);
      for (const r of want) expectRow(state.get(`${String(r.sym)}@${String(r.ts)}`)!, r, `bars record ${n}`);
    }
    expect(revisions).toBeGreaterThan(0); // late ticks revised closed bars
    expect(rowsOf(runner.snapshot()!.table).length).toBe(state.size);
  });
});
