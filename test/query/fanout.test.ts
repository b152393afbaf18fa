// Fan-out without a broker: a coordinator engine that holds some buckets and
// asks fake "nodes" for the others through the real part codec (answerPart ->
// encodePartReply -> decodePartReply) answers every operator exactly like one
// engine holding every shard, also when the two tables of a join have
// different shard counts; shards that are missing or lagging make the answer
// incomplete with notes, or UNAVAILABLE under consistency "complete".
import { describe, expect, it } from "vitest";
import { PartTooLargeError, QueryError } from "../../protocols/errors.js";
import { bucketOf } from "../../protocols/routing.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { HotTable } from "../../src/hotset/index.js";
import { LastBoard } from "../../src/hotset/lastboard.js";
import { ProxistQueryEngine, answerPart, chunks, decodePartReply, encodePartReply, joinChunks, staticSource } from "../../src/query/index.js";
import type { BucketPlace, ClusterParts, HotShard, PartReply, PartRequest } from "../../src/query/index.js";
import { SPAN, TENANT, T_BASE, quotesSpec, tradesSpec, workload } from "./fixture.js";
import type { Workload } from "./fixture.js";
import { diffRows, outRows } from "./oracle.js";

/** The workload's records split again for other shard counts: one record (own LSN) per bucket, as the gateway writes them. */
function rebucket(w: Workload, specs: readonly TableSpec[], chunks = { chunkRows: 64, firstChunkRows: 4, nextChunkRows: 16 }): Map<string, HotShard[]> {
  const tables = new Map<string, HotShard[]>();
  for (const spec of specs) tables.set(spec.name, Array.from({ length: spec.shards }, (_, bucket) => ({ bucket, table: new HotTable(spec, chunks) })));
  let lsn = 0;
  for (const r of w.records) {
    const spec = specs.find((s) => s.name === r.table)!;
    const b = r.batch;
    for (let bucket = 0; bucket < spec.shards; bucket++) {
      const idx: number[] = [];
      for (let i = 0; i < b.rows; i++) if (bucketOf(b.symbols[b.symbolIndex[i]!]!, spec.shards) === bucket) idx.push(i);
      if (idx.length === 0) continue;
      const batch: TickBatch = {
        rows: idx.length,
        symbols: b.symbols,
        symbolIndex: Uint32Array.from(idx.map((i) => b.symbolIndex[i]!)),
        ts: Float64Array.from(idx.map((i) => b.ts[i]!)),
        values: b.values.map((v) => Float64Array.from(idx.map((i) => v[i]!))),
      };
      tables.get(spec.name)![bucket]!.table.apply(++lsn, batch);
    }
  }
  return tables;
}

type Owner = string;

/** A coordinator ("a") over `owners` (table -> owner per bucket); other owners answer through the part codec. */
function cluster(
  specs: readonly TableSpec[],
  tables: Map<string, HotShard[]>,
  owners: Record<string, readonly (Owner | undefined)[]>,
  // moved: buckets now hosted elsewhere than `owners` says; a fresh placement read sees it, a cached one does not.
  // whilePending: runs while a part is in flight (what a node does meanwhile: apply records, evict).
  // fail: what a node's part rejects with instead of an answer.
  opts: { lagging?: Record<string, number[]>; down?: string[]; fail?: Record<string, Error>; moved?: Record<string, Record<number, Owner>>; partRetriesMs?: number[]; whilePending?: () => void } = {},
) {
  const now = (table: string): (Owner | undefined)[] => owners[table]!.map((o, b) => opts.moved?.[table]?.[b] ?? o);
  const shardsOn = (node: Owner, table: string): HotShard[] =>
    tables.get(table)!.filter((h) => now(table)[h.bucket] === node).map((h) => (opts.lagging?.[table]?.includes(h.bucket) ? { ...h, readiness: () => Promise.resolve({ kind: "lagging" as const, why: "replaying at LSN 5 of 9" }) } : h));
  const runs: PartRequest[] = [];
  const replies: PartReply[] = [];
  const parts: ClusterParts = {
    placement: (_tenant, spec, fresh) =>
      Promise.resolve(
        (fresh === true ? now(spec.name) : owners[spec.name]!).map((n): BucketPlace => (n === undefined ? { kind: "missing", why: "unowned (no node is assigned the shard in px_assign)" } : n === "a" ? { kind: "local" } : { kind: "remote", node: n })),
      ),
    run: async (node, spec, req, signal) => {
      runs.push(req);
      if (opts.down?.includes(node)) throw new Error(`no responders (node ${node} is down)`);
      const fail = opts.fail?.[node];
      if (fail !== undefined) throw fail;
      // A reply comes back on a later turn of the event loop, after whatever the node did meanwhile.
      await new Promise((r) => setImmediate(r));
      opts.whilePending?.();
      const wire = JSON.parse(JSON.stringify(req)) as PartRequest;
      const reply = await answerPart(wire, spec, shardsOn(node, spec.name), undefined, signal, { nodeId: node, minLsnWaitMs: 1000 });
      // Through the wire form in small chunks, as NATS carries it.
      if (req.limit !== undefined) expect(reply.series.reduce((n, s) => n + s.hi - s.lo, 0)).toBeLessThanOrEqual(req.limit.n);
      const back = decodePartReply(spec, joinChunks(chunks(encodePartReply(spec, reply), 1000)), req);
      replies.push(back);
      return back;
    },
  };
  const local = staticSource(new Map([[TENANT, new Map(specs.map((spec) => [spec.name, { spec, shards: shardsOn("a", spec.name) }]))]]));
  return { engine: new ProxistQueryEngine({ source: local, parts, ...(opts.partRetriesMs === undefined ? {} : { partRetriesMs: opts.partRetriesMs }) }), runs, replies, parts, source: local };
}

function single(specs: readonly TableSpec[], tables: Map<string, HotShard[]>): ProxistQueryEngine {
  return new ProxistQueryEngine({ source: staticSource(new Map([[TENANT, new Map(specs.map((spec) => [spec.name, { spec, shards: tables.get(spec.name)! }]))]])) });
}

/**
 * The same shards with an empty last-row board (hotset/lastboard.ts): every
 * last-by reads its rows from the series, the reference for the board's path.
 */
function withoutBoards(tables: Map<string, HotShard[]>): Map<string, HotShard[]> {
  const empty = new LastBoard([], 0);
  const bare = (t: HotTable): HotTable => Object.create(t, { lastBoard: { value: () => empty } }) as HotTable;
  return new Map([...tables].map(([name, shards]) => [name, shards.map((h) => ({ ...h, table: bare(h.table) }))]));
}

const t0 = T_BASE + SPAN / 4;
const t1 = T_BASE + (3 * SPAN) / 4;
const QUERIES: Record<string, unknown>[] = [
  { op: "range", table: "trades" },
  { op: "range", table: "trades", t0, t1, symbols: ["S1", "S4", "NOPE"] },
  { op: "range", table: "trades", t0, t1, order: "desc", limit: 37 },
  { op: "range", table: "trades", sort: "symbol", columns: ["price"] },
  { op: "range", table: "trades", t0, limit: 50 },
  { op: "range", table: "trades", sort: "symbol", order: "desc", limit: 61 },
  { op: "lastBy", table: "trades" },
  { op: "lastBy", table: "trades", at: t0 },
  { op: "firstBy", table: "quotes", t0 },
  { op: "asof", table: "trades", t0, t1, right: { table: "quotes" } },
  { op: "asof", table: "trades", t0, t1, right: { table: "quotes" }, direction: "nearest", tolerance: "2ms" },
  { op: "windowJoin", table: "trades", t0, t1, right: { table: "quotes" }, before: "1s", after: "0s", aggregates: [{ fn: "avg", column: "bid" }, { fn: "count" }] },
  { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "sum", column: "size" }, { fn: "vwap", column: "price" }] },
  { op: "rolling", table: "trades", t0, t1, rows: 3, aggregates: [{ fn: "max", column: "price" }] },
  { op: "bars", table: "trades", bucket: "1s", fill: "previous", t0, t1 },
  { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }, { fn: "sum", column: "size" }, { fn: "last", column: "price" }] },
  { op: "groupBy", table: "trades", by: ["bucket"], bucket: "5s", aggregates: [{ fn: "min", column: "price" }, { fn: "vwap", column: "price" }] },
  { op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "count" }, { fn: "avg", column: "price" }] },
];

describe("fanout - every operator over shards spread across nodes", () => {
  const w = workload(12, { symbols: 24, records: 80 });
  for (const shape of [
    { name: "same shard counts", trades: 3, quotes: 3, owners: { trades: ["a", "b", "c"], quotes: ["c", "a", "b"] } },
    { name: "different shard counts (join sides route to different buckets)", trades: 4, quotes: 3, owners: { trades: ["b", "a", "c", "b"], quotes: ["c", "c", "b"] } },
  ]) {
    it(`fanout - equals one node holding every shard (${shape.name})`, async () => {
      const specs = [tradesSpec(shape.trades), quotesSpec(shape.quotes)];
      const tables = rebucket(w, specs);
      const { engine } = cluster(specs, tables, shape.owners);
      const oracle = single(specs, tables);
      for (const q of QUERIES) {
        const got = await engine.execute(TENANT, q);
        const want = await oracle.execute(TENANT, q);
        // Combined partials add floats in another order: equal within 1e-9 relative.
        expect({ q, diff: diffRows(outRows(got.table), outRows(want.table)) }).toEqual({ q, diff: undefined });
        expect({ q, notes: got.notes }).toEqual({ q, notes: [] });
        expect(got.table.rows).toBeGreaterThan(0);
      }
    });
  }

  it("fanout - last-by after evictions (seam cache rows, symbols with no hot row left) equals one node holding every shard", async () => {
    const specs = [tradesSpec(4), quotesSpec(3)];
    const tables = rebucket(w, specs);
    // Evict below the middle of the span: some symbols keep only their seam row.
    const H = T_BASE + SPAN / 2;
    for (const shards of tables.values()) for (const h of shards) h.table.evict(Number.MAX_SAFE_INTEGER, H);
    const { engine } = cluster(specs, tables, { trades: ["b", "a", "c", "b"], quotes: ["c", "a", "b"] });
    const oracle = single(specs, tables);
    const seamOnly = [...tables.get("trades")!].reduce((n, h) => n + h.table.symbols().filter((_, id) => h.table.series(id)!.length === 0 && h.table.seam(id) !== null).length, 0);
    expect(seamOnly).toBeGreaterThan(0);
    for (const q of [
      { op: "lastBy", table: "trades" },
      { op: "lastBy", table: "quotes", columns: ["ask"] },
      { op: "lastBy", table: "trades", at: T_BASE + (SPAN * 3) / 4 },
      { op: "lastBy", table: "trades", symbols: ["S1", "S7", "NOPE"] },
    ]) {
      const got = await engine.execute(TENANT, q);
      const want = await oracle.execute(TENANT, q);
      expect({ q, diff: diffRows(outRows(got.table), outRows(want.table)) }).toEqual({ q, diff: undefined });
      expect({ q, notes: got.notes }).toEqual({ q, notes: [] });
      expect(got.table.rows).toBeGreaterThan(0);
    }
  });

  it("fanout - rows this node loaded are its own copies: records applied while remote parts are pending do not change them", async () => {
    // Seen in the fault suite: a coordinator held views of its hot chunks while it waited for the other
    // owners; the shard applied records meanwhile (a late tick moves rows in place) and the answer had a
    // symbol's rows out of order. Each query: a late tick (ts before every row) into every local shard;
    // chunks large enough that a symbol's rows are one slice (what a load hands out as views).
    const specs = [tradesSpec(3), quotesSpec(3)];
    for (const q of [{ op: "range", table: "trades" }, { op: "range", table: "trades", sort: "symbol" }, { op: "asof", table: "trades", right: { table: "quotes" } }]) {
      const tables = rebucket(w, specs, { chunkRows: 4096, firstChunkRows: 4096, nextChunkRows: 4096 });
      const want = outRows((await single(specs, tables).execute(TENANT, q)).table);
      let lsn = 1e6;
      const local = [tables.get("trades")![0]!, tables.get("quotes")![1]!];
      const late = (): void => {
        for (const h of local) {
          // The symbol with the most rows: the tick lands before all of them and moves them up in place.
          const syms = h.table.symbols();
          const sym = syms.reduce((a, b) => (h.table.series(h.table.lookup(b)!)!.length > h.table.series(h.table.lookup(a)!)!.length ? b : a));
          h.table.apply(++lsn, { rows: 1, symbols: [sym], symbolIndex: Uint32Array.of(0), ts: Float64Array.of(T_BASE - 1), values: h.table.spec.columns.map(() => Float64Array.of(0)) });
        }
      };
      const { engine } = cluster(specs, tables, { trades: ["a", "b", "c"], quotes: ["b", "a", "c"] }, { whilePending: late });
      const got = outRows((await engine.execute(TENANT, q)).table);
      expect({ q, diff: diffRows(got, want) }).toEqual({ q, diff: undefined });
    }
  });

  it("fanout - last-by from flat rows (own buckets read as copies, replies' rows) equals the generic path over series, with and without evictions", async () => {
    const specs = [tradesSpec(4), quotesSpec(3)];
    const owners = { trades: ["b", "a", "c", "b"], quotes: ["c", "a", "b"] };
    // "half": only records up to half the LSNs persisted, so late unpersisted rows below H stay hot, older than their symbol's seam row.
    for (const evict of ["none", "all", "half"] as const) {
      const tables = rebucket(w, specs);
      if (evict !== "none") for (const shards of tables.values()) for (const h of shards) h.table.evict(evict === "all" ? Number.MAX_SAFE_INTEGER : Math.floor(h.table.appliedLsn / 2), Math.floor(T_BASE + SPAN / 3));
      const flat = cluster(specs, tables, owners);
      // The generic path: replies without flat rows make the coordinator union series and run byOp.
      const generic = cluster(specs, tables, owners);
      const run = generic.parts.run;
      generic.parts.run = async (node, spec, req, signal) => {
        const r = await run(node, spec, req, signal);
        return { statuses: r.statuses, notes: r.notes, coldRows: r.coldRows, series: r.series };
      };
      const engineOf = (c: typeof flat): ProxistQueryEngine => new ProxistQueryEngine({ source: c.source, parts: c.parts });
      let flatReplies = 0;
      for (const at of [undefined, T_BASE + SPAN / 2, T_BASE + SPAN / 5, T_BASE - 1, T_BASE + SPAN * 2]) {
        for (const extra of [{}, { symbols: ["S1", "S7", "NOPE", "S12"] }, { columns: ["size"] }, { t0: T_BASE + SPAN / 10 }]) {
          if ("t0" in extra && at !== undefined && at <= extra.t0) continue;
          const q = { op: "lastBy", table: "trades", ...(at === undefined ? {} : { at }), ...extra };
          flat.replies.length = 0;
          const got = await engineOf(flat).execute(TENANT, q);
          flatReplies += flat.replies.filter((r) => r.rows !== undefined).length;
          const want = await engineOf(generic).execute(TENANT, q);
          const oracle = await single(specs, tables).execute(TENANT, q);
          const fromSeries = await single(specs, withoutBoards(tables)).execute(TENANT, q);
          expect({ q, diff: diffRows(outRows(oracle.table), outRows(fromSeries.table)) }).toEqual({ q, diff: undefined });
          expect({ q, diff: diffRows(outRows(got.table), outRows(want.table)) }).toEqual({ q, diff: undefined });
          expect({ q, diff: diffRows(outRows(got.table), outRows(oracle.table)) }).toEqual({ q, diff: undefined });
          expect({ q, notes: got.notes }).toEqual({ q, notes: want.notes });
        }
      }
      expect(flatReplies).toBeGreaterThan(0);
    }
  });

  it("fanout - parts carry the pushed-down symbols (only each owner's), range, look-behind and columns", async () => {
    const specs = [tradesSpec(3), quotesSpec(3)];
    const { engine, runs, replies } = cluster(specs, rebucket(w, specs), { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] });
    await engine.execute(TENANT, { op: "lastBy", table: "trades", symbols: ["S1", "S2", "S3", "S4"], columns: ["price"], at: t0 });
    expect(runs.map((r) => r.buckets)).toEqual([[1], [2]]);
    for (const r of runs) {
      expect(r.symbols!.every((s) => bucketOf(s, 3) === r.buckets[0])).toBe(true);
      expect({ t1: r.t1, behind: r.behind, columns: r.columns }).toEqual({ t1: t0 + 1, behind: 1, columns: ["price"] });
    }
    runs.length = 0;
    await engine.execute(TENANT, { op: "range", table: "trades", order: "desc", limit: 5 });
    expect(runs.map((r) => r.limit)).toEqual([
      { n: 5, sort: "time", desc: true },
      { n: 5, sort: "time", desc: true },
    ]);
    // bars/groupBy: each owner sends its group partials, no rows.
    runs.length = 0;
    replies.length = 0;
    await engine.execute(TENANT, { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }] });
    expect(runs.map((r) => r.partials?.bySymbol)).toEqual([true, true]);
    expect(replies.map((r) => [r.series.length, (r.group?.size ?? 0) > 0])).toEqual([
      [0, true],
      [0, true],
    ]);
  });
});

describe("fanout - completeness", () => {
  const w = workload(13, { symbols: 12, records: 40 });
  const specs = [tradesSpec(3), quotesSpec(3)];
  const tables = rebucket(w, specs);

  it("fanout - an unowned shard, a lagging replica and a node that does not answer are each named; the rest is answered", async () => {
    const { engine } = cluster(specs, tables, { trades: ["a", undefined, "c"], quotes: ["a", "b", "c"] }, { lagging: { trades: [0] } });
    const r = await engine.execute(TENANT, { op: "lastBy", table: "trades" });
    expect(r.notes).toEqual(["table trades shard 1: missing: unowned (no node is assigned the shard in px_assign)", "table trades shard 0: lagging: replaying at LSN 5 of 9"]);
    const want = outRows((await single(specs, tables).execute(TENANT, { op: "lastBy", table: "trades" })).table).filter((row) => bucketOf(row[0] as string, 3) !== 1);
    expect(outRows(r.table)).toEqual(want);

    const down = cluster(specs, tables, { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] }, { down: ["c"] });
    const d = await down.engine.execute(TENANT, { op: "range", table: "trades" });
    expect(d.notes).toEqual(["table trades shard 2: missing: owner c did not answer (no responders (node c is down))"]);
  });

  it("fanout - a part too large to send fails the whole query with INVALID_ARGUMENT; another part error, even one coded INVALID_ARGUMENT, names the shard missing", async () => {
    const owners = { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] };
    const big = cluster(specs, tables, owners, { fail: { c: new PartTooLargeError("the part of table trades asked of node c is 2000000 bytes") } });
    await expect(big.engine.execute(TENANT, { op: "range", table: "trades" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining("2000000 bytes") as unknown });
    // Only the coordinator's own refusal is the query's fault: an owner's error stays that owner's shard missing.
    const other = cluster(specs, tables, owners, { fail: { c: new QueryError("INVALID_ARGUMENT", "column px_new is not in table trades") } });
    expect((await other.engine.execute(TENANT, { op: "range", table: "trades" })).notes).toEqual(["table trades shard 2: missing: owner c did not answer (column px_new is not in table trades)"]);
  });

  it("fanout - a shard that moved after the coordinator read px_assign is asked of its new owner: a complete answer; without the retry it is named missing", async () => {
    const owners = { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] };
    const moved = { trades: { 1: "c" } };
    const { engine, runs } = cluster(specs, tables, owners, { moved, partRetriesMs: [1] });
    const oracle = single(specs, tables);
    for (const q of [{ op: "range", table: "trades" }, { op: "lastBy", table: "trades", consistency: "complete" }, { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }] }, { op: "asof", table: "trades", right: { table: "quotes" } }]) {
      runs.length = 0;
      const got = await engine.execute(TENANT, q);
      expect({ q, notes: got.notes, diff: diffRows(outRows(got.table), outRows((await oracle.execute(TENANT, q)).table)) }).toEqual({ q, notes: [], diff: undefined });
      // b was asked for bucket 1 and said it does not host it; c was asked again for it alone.
      expect(runs.filter((r) => r.table === "trades").map((r) => r.buckets)).toEqual([[1], [2], [1]]);
    }
    // Negative control: no retry, the moved shard is missing and named.
    const once = cluster(specs, tables, owners, { moved, partRetriesMs: [] });
    const r = await once.engine.execute(TENANT, { op: "range", table: "trades" });
    expect(r.notes).toEqual(["table trades shard 1: missing: its owner b in px_assign does not host it (moving, or not started yet)"]);
    // A node that does not answer is not asked again while px_assign still places the shard there; once it moved, the new owner is.
    const down = cluster(specs, tables, owners, { down: ["c"], partRetriesMs: [1, 1] });
    expect((await down.engine.execute(TENANT, { op: "range", table: "trades" })).notes).toEqual(["table trades shard 2: missing: owner c did not answer (no responders (node c is down))"]);
    expect(down.runs.filter((x) => x.buckets.includes(2))).toHaveLength(1);
    const failedOver = cluster(specs, tables, owners, { down: ["c"], moved: { trades: { 2: "b" } }, partRetriesMs: [1] });
    const f = await failedOver.engine.execute(TENANT, { op: "range", table: "trades" });
    expect({ notes: f.notes, diff: diffRows(outRows(f.table), outRows((await oracle.execute(TENANT, { op: "range", table: "trades" })).table)) }).toEqual({ notes: [], diff: undefined });
  });

  it('fanout - consistency "complete" refuses with UNAVAILABLE naming the shard, and metadata says complete=false otherwise', async () => {
    const { engine } = cluster(specs, tables, { trades: ["a", "b", undefined], quotes: ["a", "b", "c"] });
    await expect(engine.execute(TENANT, { op: "range", table: "trades", consistency: "complete" })).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("table trades shard 2: missing: unowned") as unknown });
    const lag = cluster(specs, tables, { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] }, { lagging: { quotes: [1] } });
    await expect(lag.engine.execute(TENANT, { op: "asof", table: "trades", right: { table: "quotes" }, consistency: "complete" })).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: expect.stringContaining("table quotes shard 1: lagging: replaying at LSN 5 of 9") as unknown,
    });
    const batches = [];
    for await (const b of engine.run(TENANT, { op: "lastBy", table: "trades" }, new AbortController().signal)) batches.push(b);
    expect(batches[0]!.schema.metadata.get("proxist.complete")).toBe("false");
    expect(batches[0]!.schema.metadata.get("proxist.notes")).toContain("shard 2: missing");
    const ok = cluster(specs, tables, { trades: ["a", "b", "c"], quotes: ["a", "b", "c"] });
    const all = [];
    for await (const b of ok.engine.run(TENANT, { op: "lastBy", table: "trades", consistency: "complete" }, new AbortController().signal)) all.push(b);
    expect(all[0]!.schema.metadata.get("proxist.complete")).toBe("true");
  });

  it("fanout - minLsn per table reaches the parts of that table only", async () => {
    const { engine, runs } = cluster(specs, tables, { trades: ["b", "b", "c"], quotes: ["c", "b", "b"] });
    await engine.execute(TENANT, { op: "asof", table: "trades", right: { table: "quotes" }, minLsn: { quotes: 3 } });
    expect(runs.map((r) => [r.table, r.minLsn])).toEqual(expect.arrayContaining([["trades", undefined], ["quotes", 3]]));
    await expect(engine.execute(TENANT, { op: "range", table: "trades", minLsn: { trades: -1 } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("fanout - unreadable shard assignments are UNAVAILABLE with a retry hint", async () => {
    const parts: ClusterParts = { placement: () => Promise.reject(new Error("KV timeout")), run: () => Promise.reject(new Error("unused")) };
    const e = new ProxistQueryEngine({ source: staticSource(new Map([[TENANT, new Map([["trades", { spec: specs[0]!, shards: [] }]])]])), parts });
    await expect(e.execute(TENANT, { op: "range", table: "trades" })).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/table trades live \(px_assign\): KV timeout; retry/) as unknown });
  });

  it("fanout - a query cancelled while its local shards' status is read ends with the cancellation, not an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const parts: ClusterParts = {
        placement: (_t, spec) => Promise.resolve(Array.from({ length: spec.shards }, (_, b): BucketPlace => (b === 0 ? { kind: "local" } : { kind: "remote", node: "b" }))),
        // The owner's part rejects with the query's cancellation, as runPart does.
        run: (_node, _spec, _req, signal) => new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason as Error))),
      };
      const local = tables.get("trades")![0]!;
      // A local shard whose status takes a while to read (a lagging shard asks NATS for its last LSN).
      const slow: HotShard = { ...local, readiness: () => new Promise((r) => setTimeout(() => r({ kind: "live", why: "" }), 100)) };
      const e = new ProxistQueryEngine({ source: staticSource(new Map([[TENANT, new Map([["trades", { spec: specs[0]!, shards: [slow] }]])]])), parts });
      const ctl = new AbortController();
      const p = e.execute(TENANT, { op: "range", table: "trades" }, ctl.signal);
      await new Promise((r) => setTimeout(r, 20));
      ctl.abort(new Error("client cancelled"));
      await expect(p).rejects.toThrow("client cancelled");
      await new Promise((r) => setTimeout(r, 150));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("fanout - a cancelled query aborts its parts (the signal reaches run)", async () => {
    const seen: (AbortSignal | undefined)[] = [];
    const parts: ClusterParts = {
      placement: (_t, spec) => Promise.resolve(Array.from({ length: spec.shards }, (): BucketPlace => ({ kind: "remote", node: "b" }))),
      run: (_node, _spec, _req, signal) =>
        new Promise((_resolve, reject) => {
          seen.push(signal);
          signal?.addEventListener("abort", () => reject(new Error("cancelled")));
        }),
    };
    const e = new ProxistQueryEngine({ source: staticSource(new Map([[TENANT, new Map([["trades", { spec: specs[0]!, shards: [] }]])]])), parts });
    const ctl = new AbortController();
    const p = e.execute(TENANT, { op: "range", table: "trades" }, ctl.signal);
    await new Promise((r) => setTimeout(r, 20));
    ctl.abort(new Error("client cancelled"));
    await expect(p).rejects.toThrow("cancelled");
    expect(seen.length).toBe(1);
    expect(seen[0]!.aborted).toBe(true);
  });
});

describe("fanout - part codec", () => {
  it("fanout - a 4-byte column of symbols with odd row counts decodes to the owner's values (no padding between symbols)", async () => {
    const spec = parseTableSpec({ name: "t", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "venue", type: "int32" }] });
    const table = new HotTable(spec);
    const counts = [3, 5, 1, 7];
    const symbolIndex = Uint32Array.from(counts.flatMap((n, s) => Array.from({ length: n }, () => s)));
    const rows = symbolIndex.length;
    table.apply(1, {
      rows,
      symbols: ["A", "B", "C", "D"],
      symbolIndex,
      ts: Float64Array.from({ length: rows }, (_, i) => T_BASE + i),
      values: [Float64Array.from({ length: rows }, (_, i) => i + 0.5), Int32Array.from({ length: rows }, (_, i) => 100 + i)],
    });
    const req: PartRequest = { id: "p", tenant: TENANT, table: "t", buckets: [0], symbols: undefined, t0: T_BASE, t1: T_BASE + rows, behind: 0, ahead: 0, columns: ["price", "venue"], minLsn: undefined, timeoutMs: 1_000 };
    const reply = await answerPart(req, spec, [{ bucket: 0, table }], undefined, undefined, { nodeId: "b", minLsnWaitMs: 100 });
    const back = decodePartReply(spec, encodePartReply(spec, reply), req);
    const view = (r: PartReply) => r.series.map((s) => [s.symbol, Array.from(s.values[1]!.subarray(s.lo, s.hi)), Array.from(s.values[0]!.subarray(s.lo, s.hi))]);
    expect(view(reply).map(([, v]) => (v as number[]).length)).toEqual(counts);
    expect(view(back)).toEqual(view(reply));
  });
});
