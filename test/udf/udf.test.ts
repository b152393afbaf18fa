// User-defined functions in the query engine (issue 17): a user-written VWAP
// aggregate equals the built-in one (groupBy, bars, rolling) on seeded random
// data; a scalar function equals the same expression computed in TypeScript;
// hostile functions (loop, memory bomb, host objects, throw) end their query
// with an error naming the function and the limit, and the next query is
// answered; the per-tenant rate limit refuses with RESOURCE_EXHAUSTED.
import { afterAll, describe, expect, it } from "vitest";
import type { QueryError } from "../../protocols/errors.js";
import { decodeQuery, encodeQuery, parseQuery } from "../../protocols/query.js";
import { planFeed } from "../../src/feed/index.js";
import type { FunctionSpec, TenantQuotas } from "../../protocols/tablespec.js";
import { ProxistQueryEngine, staticSource } from "../../src/query/index.js";
import { UdfHost, functionHash } from "../../src/udf/index.js";
import type { UdfLimits } from "../../src/udf/index.js";
import { buildHot, SPAN, T_BASE, TENANT, workload } from "../query/fixture.js";
import { col, expectClose, failure } from "./expect.js";
import { SLIDING_VWAP_SOURCE, VWAP_SOURCE } from "./sources.js";


const fn = (name: string, kind: FunctionSpec["kind"], source: string, limits?: FunctionSpec["limits"]): FunctionSpec => {
  const f: FunctionSpec = { name, kind, source, ...(limits === undefined ? {} : { limits }) };
  return { ...f, hash: functionHash(f), version: 1 };
};

const FUNCTIONS: FunctionSpec[] = [
  fn("myvwap", "aggregate", VWAP_SOURCE),
  fn("slidevwap", "aggregate", SLIDING_VWAP_SOURCE),
  fn("mid", "scalar", "function mid(bid, ask) { return (bid + ask) / 2; }"),
  fn("spin", "scalar", "function spin(x) { for (;;) {} }", { cpuMsPerCall: 200 }),
  fn("slow", "scalar", "function slow(x) { const t = Date.now(); while (Date.now() - t < 60) {} return x; }", { cpuMsPerCall: 1000, cpuMsPerQuery: 150 }),
  fn("bomb", "aggregate", "const bomb = { init() { return []; }, accumulate(s, x) { for (;;) s.push({ x, n: s.length }); }, merge(a, b) { return a; }, finish(s) { return 0; } };", { memoryBytes: 16 << 20, cpuMsPerCall: 30_000, cpuMsPerQuery: 30_000 }),
  fn("deep", "scalar", "function deep(x) { return deep(x + 1) + 1; }"),
  fn("oops", "scalar", "function oops(x) { if (x > 0) throw new RangeError('negative prices only, got ' + x); return x; }"),
  fn(
    "probe",
    "scalar",
    `function probe(x) {
      const reach = [typeof process, typeof require, typeof fetch, typeof globalThis.process, typeof globalThis.require, typeof XMLHttpRequest, typeof WebAssembly, typeof setTimeout, typeof console, typeof std, typeof os, typeof Deno, typeof Bun];
      return reach.every((t) => t === "undefined") ? 1 : 0;
    }`,
  ),
  fn("getproc", "scalar", "function getproc(x) { return process.pid; }"),
];

const w = workload(17, { symbols: 9, records: 80, rowsPerRecord: 60 });
const hot = buildHot(w);
const source = staticSource(new Map([[TENANT, new Map(w.specs.map((spec) => [spec.name, { spec, shards: hot.tables.get(spec.name)! }]))]]));

const hosts: UdfHost[] = [];
function engineWith(opts: { quotas?: TenantQuotas; limitsOverride?: Partial<UdfLimits>; nowMs?: () => number } = {}): ProxistQueryEngine {
  const udfs = new UdfHost({
    functions: (t) => (t === TENANT ? FUNCTIONS : []),
    ...(opts.limitsOverride === undefined ? {} : { limitsOverride: opts.limitsOverride }),
  });
  hosts.push(udfs);
  return new ProxistQueryEngine({ source, udfs, ...(opts.quotas === undefined ? {} : { quotas: () => opts.quotas! }), ...(opts.nowMs === undefined ? {} : { nowMs: opts.nowMs }) });
}
afterAll(() => hosts.forEach((h) => h.close()));

const engine = engineWith();
const T0 = T_BASE;
const T1 = T_BASE + SPAN;


const UDAF = { fn: "udf", name: "myvwap", args: ["price", "size"], as: "uvwap" };
const BUILTIN = { fn: "vwap", column: "price", weight: "size", as: "vwap" };

describe("user-defined aggregate = built-in", () => {
  it("groupBy symbol and bucket: myvwap equals vwap", async () => {
    const r = await engine.execute(TENANT, { op: "groupBy", table: "trades", t0: T0, t1: T1, by: ["symbol", "bucket"], bucket: "1s", aggregates: [BUILTIN, UDAF, { fn: "count" }] });
    expect(r.table.rows).toBeGreaterThan(50);
    expectClose(col(r.table, "uvwap"), col(r.table, "vwap"));
  });

  it("groupBy bucket only (groups across symbols, merged in the sandbox) and no keys", async () => {
    for (const by of [["bucket"], []]) {
      const q = { op: "groupBy", table: "trades", t0: T0, t1: T1, by, ...(by.length > 0 ? { bucket: "2s" } : {}), aggregates: [BUILTIN, UDAF] };
      const r = await engine.execute(TENANT, q);
      expect(r.table.rows).toBeGreaterThan(0);
      expectClose(col(r.table, "uvwap"), col(r.table, "vwap"));
    }
  });

  it("bars: an extra myvwap column equals the bar's vwap, including filled buckets (null)", async () => {
    const r = await engine.execute(TENANT, { op: "bars", table: "trades", t0: T0, t1: T1, bucket: "1s", fill: "null", aggregates: [UDAF] });
    const vw = col(r.table, "vwap");
    expect(vw.some((v) => v === null)).toBe(true);
    expectClose(col(r.table, "uvwap"), vw);
  });

  it("bars without user functions still answer the built-in extra aggregates", async () => {
    const r = await engine.execute(TENANT, { op: "bars", table: "trades", t0: T0, t1: T1, bucket: "1s", aggregates: [{ fn: "max", column: "price", as: "hi2" }] });
    expectClose(col(r.table, "hi2"), col(r.table, "high"));
  });

  it("rolling rows and time windows: myvwap (refolded per window) and slidevwap (with retract: sliding) equal vwap", async () => {
    const slide = { fn: "udf", name: "slidevwap", args: ["price", "size"] };
    for (const win of [{ rows: 5 }, { window: "2s" }]) {
      const r = await engine.execute(TENANT, { op: "rolling", table: "trades", t0: T0 + SPAN / 4, t1: T1, ...win, aggregates: [BUILTIN, UDAF, slide] });
      expect(r.table.rows).toBeGreaterThan(100);
      expectClose(col(r.table, "uvwap"), col(r.table, "vwap"));
      expectClose(col(r.table, "slidevwap"), col(r.table, "vwap"));
    }
  });
});

describe("scalar user-defined function", () => {
  it("mid(bid, ask) as a derived column equals (bid + ask) / 2", async () => {
    const r = await engine.execute(TENANT, { op: "range", table: "quotes", t0: T0, t1: T1, derived: [{ fn: "udf", name: "mid", args: ["bid", "ask"] }] });
    expect(r.table.rows).toBeGreaterThan(1000);
    const bid = col(r.table, "bid") as number[];
    const ask = col(r.table, "ask") as number[];
    expect(col(r.table, "mid")).toEqual(bid.map((b, i) => (b + ask[i]!) / 2));
  });

  it("a query naming an unknown function, or a scalar as an aggregate, is refused naming it", async () => {
    const e1 = await failure(engine, { op: "range", table: "quotes", derived: [{ fn: "udf", name: "nosuch", args: ["bid"] }] });
    expect(e1.code).toBe("INVALID_ARGUMENT");
    expect(e1.message).toMatch(/function nosuch.*its functions: myvwap, slidevwap, mid/);
    const e2 = await failure(engine, { op: "groupBy", table: "quotes", by: ["symbol"], aggregates: [{ fn: "udf", name: "mid", args: ["bid", "ask"] }] });
    expect(e2.code).toBe("INVALID_ARGUMENT");
    expect(e2.message).toMatch(/mid .* is a scalar function/);
  });
});

describe("hostile functions end their query, and the engine keeps answering", () => {
  const next = async (e: ProxistQueryEngine): Promise<void> => {
    const r = await e.execute(TENANT, { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [UDAF, BUILTIN] });
    expectClose(col(r.table, "uvwap"), col(r.table, "vwap"));
    const m = await e.execute(TENANT, { op: "range", table: "quotes", limit: 3, derived: [{ fn: "udf", name: "mid", args: ["bid", "ask"] }] });
    expect(m.table.rows).toBe(3);
  };
  const derived = (name: string): unknown => ({ op: "range", table: "trades", derived: [{ fn: "udf", name, args: ["price"] }] });

  it("an infinite loop is stopped at its CPU-time limit per call, naming the function and the limit", async () => {
    const t0 = performance.now();
    const e = await failure(engine, derived("spin"));
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/function spin \(tenant qt, version 1\) was stopped: one call ran past its CPU-time limit of 200 ms per call \(limits\.cpuMsPerCall\)/);
    await next(engine);
    // Again: the discarded sandbox is rebuilt and stopped the same way.
    expect((await failure(engine, derived("spin"))).message).toMatch(/200 ms per call/);
  });

  it("negative control: the limit is what stops it (with the per-call limit off, a bounded busy loop runs to its end)", async () => {
    const off = engineWith({ limitsOverride: { cpuMsPerCall: 0, cpuMsPerQuery: 0 } });
    // Busy for 400 ms in its first call only (each engine has its own sandbox, so each sees a first call).
    const busy = fn("busy", "scalar", "let first = true; function busy(x) { if (first) { first = false; const t = Date.now(); while (Date.now() - t < 400) {} } return 7; }");
    FUNCTIONS.push(busy);
    try {
      const q = { op: "range", table: "trades", limit: 1, derived: [{ fn: "udf", name: "busy", args: ["price"] }] };
      const t0 = performance.now();
      const r = await off.execute(TENANT, q);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
      expect(col(r.table, "busy")[0]).toBe(7);
      // The same function under a 100 ms limit is stopped.
      const lim = engineWith({ limitsOverride: { cpuMsPerCall: 100 } });
      expect((await failure(lim, q)).message).toMatch(/function busy .* CPU-time limit of 100 ms per call/);
    } finally {
      FUNCTIONS.pop();
    }
  });

  it("the per-query CPU budget ends a query whose calls are each within the per-call limit", async () => {
    // 60 ms per batch of rows, 150 ms per query: the third batch passes the query's budget.
    const e = await failure(engine, { op: "range", table: "trades", derived: [{ fn: "udf", name: "slow", args: ["price"] }] });
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/function slow .* CPU-time limit of 150 ms per query \(limits\.cpuMsPerQuery\)/);
    await next(engine);
  });

  it("a memory bomb is stopped at its memory limit", { timeout: 30_000 }, async () => {
    const e = await failure(engine, { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "udf", name: "bomb", args: ["price"] }] });
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/function bomb .* it ran out of memory within its memory limit of 16777216 bytes \(limits\.memoryBytes\)/);
    await next(engine);
  });

  it("runaway recursion ends as a stack overflow, not a crash", async () => {
    const e = await failure(engine, derived("deep"));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.message).toMatch(/function deep .* call stack overflowed/);
    await next(engine);
  });

  it("a function that throws ends the query with its error", async () => {
    const e = await failure(engine, derived("oops"));
    expect(e.code).toBe("FAILED_PRECONDITION");
    expect(e.message).toMatch(/function oops \(tenant qt, version 1\) threw: RangeError: negative prices only, got 1\d\d/);
    await next(engine);
  });

  it("process, require, fetch and the other host objects are absent in the sandbox", async () => {
    const r = await engine.execute(TENANT, { op: "range", table: "trades", limit: 5, derived: [{ fn: "udf", name: "probe", args: ["price"] }] });
    expect(col(r.table, "probe")).toEqual([1, 1, 1, 1, 1]);
    const e = await failure(engine, derived("getproc"));
    expect(e.message).toMatch(/function getproc .* threw: ReferenceError: .*process.* is not defined/);
    await next(engine);
  });

  it("another tenant's functions are not reachable", async () => {
    const other = new ProxistQueryEngine({
      source: staticSource(new Map([["other", new Map(w.specs.map((spec) => [spec.name, { spec, shards: hot.tables.get(spec.name)! }]))]])),
      udfs: new UdfHost({ functions: (t) => (t === TENANT ? FUNCTIONS : []) }),
    });
    const err = await other.execute("other", { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [UDAF] }).catch((x: unknown) => x);
    expect((err as QueryError).code).toBe("INVALID_ARGUMENT");
    expect((err as QueryError).message).toMatch(/tenant other has none of that name \(its functions: none\)/);
  });
});

describe("rate limit", () => {
  it("udfQueriesPerSecond refuses with RESOURCE_EXHAUSTED, and refills", async () => {
    let now = 1_000_000;
    const e = engineWith({ quotas: { udfQueriesPerSecond: 2 }, nowMs: () => now });
    const q = { op: "range", table: "quotes", limit: 1, derived: [{ fn: "udf", name: "mid", args: ["bid", "ask"] }] };
    await e.execute(TENANT, q);
    await e.execute(TENANT, q);
    const err = await failure(e, q);
    expect(err.code).toBe("RESOURCE_EXHAUSTED");
    expect(err.message).toMatch(/udfQueriesPerSecond/);
    // Queries without user functions are not counted.
    await e.execute(TENANT, { op: "range", table: "quotes", limit: 1 });
    now += 600;
    await e.execute(TENANT, q);
  });
});

describe("query forms", () => {
  const calls = [
    { op: "range", table: "quotes", derived: [{ fn: "udf", name: "mid", args: ["bid", "ask"], as: "m" }] },
    { op: "bars", table: "trades", bucket: "1m", aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }, { fn: "max", column: "price", as: "hi" }] },
    { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }] },
    { op: "rolling", table: "trades", rows: 5, aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }] },
  ];
  it("udf calls survive the protobuf form (gRPC, Flight tickets)", () => {
    for (const q of calls) expect(parseQuery(decodeQuery(encodeQuery(q)))).toEqual(parseQuery(q));
  });

  it("malformed calls are refused naming the field, the rule and the fix", () => {
    const refused: [unknown, RegExp][] = [
      [{ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "udf", args: ["price"] }] }, /aggregates\[0\]: fn "udf" needs "name" .* and "args"/],
      [{ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "udf", name: "f", args: ["price"], column: "price" }] }, /fn "udf" takes its columns in "args"; remove "column"/],
      [{ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "sum", column: "price", name: "f" }] }, /"name" and "args" are only for fn "udf"; remove them/],
      [{ op: "windowJoin", table: "trades", right: { table: "quotes" }, before: "1s", after: "0s", aggregates: [{ fn: "udf", name: "f", args: ["bid"] }] }, /windowJoin does not support fn "udf"/],
      [{ op: "range", table: "trades", derived: [{ fn: "sum", column: "price" }] }, /derived\[0\]: range does not support fn "sum"; use one of udf/],
      [{ op: "bars", table: "trades", bucket: "1m", aggregates: [{ fn: "udf", name: "vwap", args: ["price", "size"] }] }, /output name "vwap" is used twice; give one an "as" name/],
    ];
    for (const [q, msg] of refused) expect(() => parseQuery(q)).toThrow(msg);
  });

  it("an argument column that does not exist or is not numeric is refused before anything runs", async () => {
    const e = await failure(engine, { op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "volume"] }] });
    expect(e.message).toMatch(/aggregates\[0\]\.args\[1\]: table trades has no column "volume"/);
  });

  it("feeds refuse user-defined functions (not built) with the reason", () => {
    const specOf = (t: string) => w.specs.find((s) => s.name === t);
    expect(() => planFeed(TENANT, { query: { op: "bars", table: "trades", bucket: "1m", aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }] } }, specOf, () => ["trades"])).toThrow(/user-defined functions do not run in feeds yet/);
  });
});
