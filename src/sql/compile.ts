// SQL -> the JSON query model (protocols/query.ts), which the one engine runs.
// Each supported form maps to one operator: plain SELECT -> range, LATEST ON ->
// lastBy, ASOF JOIN -> asof, WINDOW JOIN -> windowJoin, aggregates OVER a
// frame -> rolling, SAMPLE BY -> bars (with FILL) or groupBy, GROUP BY ->
// groupBy. Everything else is refused by name with the form to use instead.
import { parseQuery } from "../../protocols/query.js";
import type { Node } from "./ast.js";
import { callOf, colRef, literal, show } from "./ast.js";
import type { ColRef } from "./ast.js";
import { extract, OVER_MARK } from "./extensions.js";
import type { Extracted, OverSpec } from "./extensions.js";
import { malformed, refuse } from "./refuse.js";
import { durationOf, timestampOf } from "./time.js";
import { parseShaped } from "./template.js";
import { filtersOf } from "./where.js";

/** What the compiler needs to know of a table (from the catalog); unknown tables use sym/ts. */
export interface SqlTable {
  readonly symbolColumn: string;
  readonly timeColumn: string;
  readonly columns: readonly { readonly name: string }[];
}
export type SqlTables = (table: string) => SqlTable | undefined;

/** The tenant's user-defined functions by name (pxctl apply): their kind, or undefined for no such function. */
export type SqlFunctions = (name: string) => "scalar" | "aggregate" | undefined;

export interface CompiledSql {
  /** EXPLAIN <statement>: show the plan instead of running it. */
  readonly explain: boolean;
  /** The JSON query (protocols/query.ts), already validated by parseQuery. */
  readonly query: Record<string, unknown>;
}

type Json = Record<string, unknown>;

interface Side {
  readonly table: string;
  readonly names: ReadonlySet<string>;
  readonly spec: SqlTable | undefined;
  readonly sym: string;
  readonly ts: string;
}

interface Agg {
  readonly fn: string;
  readonly column?: string;
  readonly weight?: string;
  readonly alpha?: number;
  readonly as?: string;
  /** fn "udf": the function and its argument columns. */
  readonly name?: string;
  readonly args?: readonly string[];
}

type Item =
  | { readonly kind: "star"; readonly side: "left" | "right" | "both" }
  | { readonly kind: "col"; readonly side: "left" | "right"; readonly name: string }
  | { readonly kind: "agg"; readonly agg: Agg; readonly side: "left" | "right" }
  | { readonly kind: "over"; readonly agg: Agg; readonly spec: OverSpec }
  /** A scalar user-defined function: a derived column of a range scan. */
  | { readonly kind: "derived"; readonly agg: Agg }
  | { readonly kind: "bucket"; readonly bucket: string | number; readonly alias: string | undefined };

const AGG_NAMES: Record<string, string> = {
  count: "count", sum: "sum", avg: "avg", mean: "avg", min: "min", max: "max", first: "first", last: "last",
  vwap: "vwap", stddev: "stddev", stddev_samp: "stddev", ema: "ema",
};
const AGG_FIX = "use count(*), sum, avg, min, max, first, last, vwap(price, size), stddev or ema(price, alpha)";

class Compiler {
  private readonly left: Side;
  private readonly right: Side | undefined;

  constructor(
    private readonly ast: Node,
    private readonly ext: Extracted,
    private readonly tables: SqlTables,
    private readonly nowMicros: number,
    private readonly functions: SqlFunctions,
  ) {
    const from: Node[] = ast.from ?? [];
    if (from.length === 0) throw refuse("SELECT without FROM", "name a table: SELECT * FROM trades");
    if (from.length > 2) throw refuse("a query over more than two tables", "join two tables with ASOF JOIN or WINDOW JOIN; run several queries for more");
    this.left = this.side(from[0]);
    if (from.length === 2) {
      const j = from[1];
      if (ext.join === undefined || j.join !== "LEFT JOIN") {
        const kind = j.join ? String(j.join) : "a comma join";
        throw refuse(kind, "join with ASOF JOIN (latest right row at each left row) or WINDOW JOIN (aggregates over a time window around each left row)");
      }
      this.right = this.side(j);
      this.checkOn(j);
    } else this.right = undefined;
  }

  private side(f: Node): Side {
    if (f.expr !== undefined || typeof f.table !== "string") throw refuse("a subquery in FROM", "query a table directly; run the inner query on its own");
    const table = f.db ? `${f.db}.${f.table}` : String(f.table);
    const spec = this.tables(table);
    const names = new Set<string>([table, String(f.table), ...(f.as ? [String(f.as)] : [])]);
    return { table, names, spec, sym: spec?.symbolColumn ?? "sym", ts: spec?.timeColumn ?? "ts" };
  }

  private checkOn(j: Node): void {
    const fix = "join on the symbol: ON (sym), ON t.sym = q.sym or USING (sym)";
    const isSym = (n: Node): boolean => {
      const c = colRef(n);
      return c !== undefined && (c.name === this.left.sym || c.name === this.right!.sym);
    };
    if (Array.isArray(j.using)) {
      const names = (j.using as Node[]).map((u) => (typeof u === "string" ? u : String(u?.value)));
      if (names.length !== 1 || names[0] !== this.left.sym) throw refuse(`USING (${names.join(", ")})`, fix);
      return;
    }
    const on = j.on;
    if (on === null || on === undefined) return;
    if (isSym(on)) return;
    if (on.type === "binary_expr" && on.operator === "=" && isSym(on.left) && isSym(on.right)) return;
    throw refuse(`the join condition ON ${show(on)}`, `${fix}; the join is always by symbol, then by time`);
  }

  /** Which table a column reference belongs to. */
  private whose(c: ColRef): "left" | "right" {
    if (c.qual !== undefined) {
      if (this.left.names.has(c.qual)) return "left";
      if (this.right?.names.has(c.qual)) return "right";
      throw malformed(`${c.qual}.${c.name} names no table of the query`, `qualify with ${[...this.left.names, ...(this.right?.names ?? [])].join(" or ")}`);
    }
    if (this.right === undefined) return "left";
    const inLeft = this.left.spec?.columns.some((x) => x.name === c.name) ?? true;
    const inRight = this.right.spec?.columns.some((x) => x.name === c.name) ?? false;
    return !inLeft && inRight ? "right" : "left";
  }

  private sideOf(s: "left" | "right"): Side {
    return s === "left" ? this.left : this.right!;
  }

  private aggOf(n: Node, as: string | undefined): { agg: Agg; side: "left" | "right" } {
    const call = callOf(n)!;
    const fn = AGG_NAMES[call.name];
    if (fn === undefined && this.functions(call.name) === "aggregate") return this.udfOf(call, as);
    if (fn === undefined) throw refuse(`the function ${call.name}()`, `${AGG_FIX}, or a user-defined function of the tenant (pxctl apply)`);
    if (call.distinct) throw refuse(`${call.name}(DISTINCT ...)`, AGG_FIX);
    const cols = call.args.map((a) => (a?.type === "star" ? { qual: undefined, name: "*" } : colRef(a)));
    const value = cols[0];
    let side: "left" | "right" = "left";
    const colName = (c: ColRef | undefined, what: string): string => {
      if (c === undefined || c.name === "*") throw malformed(`${call.name}(): ${what} must be a column`, AGG_FIX);
      side = this.whose(c);
      return c.name;
    };
    const agg: { -readonly [K in keyof Agg]: Agg[K] } = { fn };
    if (fn === "count") {
      if (call.args.length > 1) throw malformed("count() takes one argument", "write count(*)");
    } else {
      if (call.args.length === 0) throw malformed(`${call.name}() needs a column`, AGG_FIX);
      agg.column = colName(value, "its first argument");
      if (fn === "vwap") {
        if (call.args.length > 2) throw malformed("vwap() takes (price, size)", "write vwap(price, size)");
        if (call.args.length === 2) agg.weight = colName(cols[1], "the size argument");
      } else if (fn === "ema") {
        const alpha = literal(call.args[1]);
        if (call.args.length !== 2 || typeof alpha !== "number") throw malformed("ema() needs a smoothing factor", "write ema(price, 0.1) with alpha in (0, 1]");
        agg.alpha = alpha;
      } else if (call.args.length > 1) throw malformed(`${call.name}() takes one column`, AGG_FIX);
    }
    if (as !== undefined) agg.as = as;
    return { agg, side };
  }

  /** A user-defined function's call: every argument a column of one table. */
  private udfOf(call: { name: string; args: Node[]; distinct: boolean }, as: string | undefined): { agg: Agg; side: "left" | "right" } {
    const fix = `call it with columns, e.g. ${call.name}(price, size)`;
    if (call.distinct) throw refuse(`${call.name}(DISTINCT ...)`, fix);
    const refs = call.args.map((a) => colRef(a));
    if (refs.length === 0) throw malformed(`${call.name}() needs columns`, fix);
    const bad = refs.findIndex((r) => r === undefined || r.name === "*");
    if (bad >= 0) throw malformed(`${call.name}(): argument ${bad + 1} (${show(call.args[bad])}) must be a column`, `${fix}; compute other values in the function`);
    const sides = new Set(refs.map((r) => this.whose(r!)));
    if (sides.size > 1) throw malformed(`${call.name}() takes columns of both tables`, "give a user-defined function the columns of one table");
    const agg: Agg = { fn: "udf", name: call.name, args: refs.map((r) => r!.name), ...(as === undefined ? {} : { as }) };
    return { agg, side: [...sides][0]! };
  }

  private items(): Item[] {
    const cols: Node[] = this.ast.columns === "*" ? [{ expr: { type: "column_ref", table: null, column: "*" }, as: null }] : this.ast.columns;
    return cols.map((c): Item => {
      const e = c.expr;
      const as: string | undefined = c.as === null || c.as === undefined ? undefined : String(c.as);
      const ref = colRef(e);
      if (ref) {
        if (ref.name === "*") return { kind: "star", side: ref.qual === undefined ? "both" : this.whose({ qual: ref.qual, name: "x" }) };
        if (as !== undefined && as !== ref.name) throw refuse(`renaming the column ${ref.name} AS ${as}`, "select columns by their names (results carry the table's column names); name aggregates with AS");
        return { kind: "col", side: this.whose(ref), name: ref.name };
      }
      const call = callOf(e);
      if (call?.name.startsWith(OVER_MARK)) {
        const spec = this.ext.overs[Number(call.name.slice(OVER_MARK.length))]!;
        if (callOf(call.args[0]) === undefined) throw malformed("OVER must follow an aggregate", "write avg(price) OVER (...)");
        return { kind: "over", agg: this.aggOf(call.args[0], as).agg, spec };
      }
      if (call?.name === "time_bucket") return { kind: "bucket", bucket: this.bucketOf(e), alias: as };
      if (call !== undefined && AGG_NAMES[call.name] === undefined && this.functions(call.name) === "scalar") return { kind: "derived", agg: this.udfOf(call, as).agg };
      if (call !== undefined) return { kind: "agg", ...this.aggOf(e, as) };
      throw refuse(`the expression ${show(e)} in the select list`, "select columns, aggregates (sum(size) AS volume) or time_bucket('1m', ts); compute derived values in the client");
    });
  }

  private bucketOf(e: Node): string | number {
    const call = callOf(e)!;
    const d = literal(call.args[0]);
    const c = colRef(call.args[1]);
    if (call.args.length !== 2 || d === undefined || c === undefined || c.name !== this.left.ts) {
      throw malformed(`time_bucket(${call.args.map(show).join(", ")})`, `write time_bucket('1m', ${this.left.ts})`);
    }
    return durationOf(String(d), "time_bucket");
  }

  private orderBy(): { column: string; desc: boolean }[] {
    const list: Node[] = this.ast.orderby ?? [];
    return list.map((o) => {
      const c = colRef(o.expr);
      if (c === undefined) throw refuse(`ORDER BY ${show(o.expr)}`, "order by ts, or by sym then ts");
      return { column: c.name, desc: o.type === "DESC" };
    });
  }

  private limit(): number | undefined {
    const l = this.ast.limit;
    const vals: Node[] = l?.value ?? [];
    if (vals.length === 0) return undefined;
    if (vals.length > 1 || l.seperator === "offset" || l.seperator === ",") throw refuse("OFFSET", "page by time instead: WHERE ts > <last ts seen> ORDER BY ts LIMIT n");
    const n = literal(vals[0]);
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw malformed(`LIMIT ${show(vals[0])}`, "write LIMIT with a whole number; for the last rows write ORDER BY ts DESC LIMIT n");
    return n;
  }

  /** sort/order from ORDER BY (sym and ts only). */
  private sortOf(allowDesc: boolean, defaultSort: "time" | "symbol"): Json {
    const ob = this.orderBy();
    if (ob.length === 0) return {};
    const fix = `order by ${this.left.ts} [DESC], or by ${this.left.sym}, ${this.left.ts} (both ASC or both DESC)`;
    const names = ob.map((o) => o.column);
    const desc = ob[0]!.desc;
    if (ob.some((o) => o.desc !== desc)) throw refuse("ORDER BY with mixed directions", fix);
    if (desc && !allowDesc) throw refuse("ORDER BY ... DESC for this form", `this form answers in ascending order; ${fix.split(" [DESC]").join("")}`);
    let sort: "time" | "symbol";
    if (names.length === 1 && names[0] === this.left.ts) sort = "time";
    else if (names.length === 1 && names[0] === this.left.sym) sort = "symbol";
    else if (names.length === 2 && names[0] === this.left.sym && names[1] === this.left.ts) sort = "symbol";
    else throw refuse(`ORDER BY ${names.join(", ")}`, fix);
    return { ...(sort === defaultSort ? {} : { sort }), ...(desc ? { order: "desc" } : {}) };
  }

  private noLimit(form: string): void {
    if (this.limit() !== undefined) throw refuse(`LIMIT on ${form}`, "LIMIT applies to plain SELECTs (range scans); narrow the time range or the symbol list instead");
  }

  private common(): Json {
    if (this.ast.having) throw refuse("HAVING", "filter the aggregated rows in the client");
    const f = filtersOf(this.ast.where, (n) => {
      const c = colRef(n)!;
      if (this.whose(c) !== "left") return "other";
      return c.name === this.left.sym ? "sym" : c.name === this.left.ts ? "ts" : "other";
    }, this.nowMicros);
    return { table: this.left.table, ...(f.symbols === undefined ? {} : { symbols: f.symbols }), ...(f.t0 === undefined ? {} : { t0: f.t0 }), ...(f.t1 === undefined ? {} : { t1: f.t1 }) };
  }

  /** Value columns picked by plain column items of one side (undefined = all, from a star). */
  private valueColumns(items: readonly Item[], side: "left" | "right"): string[] | undefined {
    const s = this.sideOf(side);
    if (items.some((i) => i.kind === "star" && (i.side === side || i.side === "both"))) return undefined;
    return items.flatMap((i) => (i.kind === "col" && i.side === side && i.name !== s.sym && i.name !== s.ts ? [i.name] : []));
  }

  compile(): Json {
    const { ext } = this;
    const items = this.items();
    const has = (k: Item["kind"]): boolean => items.some((i) => i.kind === k);
    const groupBy: Node[] = this.ast.groupby?.columns ?? (Array.isArray(this.ast.groupby) ? this.ast.groupby : []);
    const forms = [ext.latest && "LATEST ON", ext.join && `${ext.join.kind.toUpperCase()} JOIN`, ext.sample && "SAMPLE BY", groupBy.length > 0 && "GROUP BY", has("over") && "OVER"].filter(Boolean);
    if (forms.length > 1) throw refuse(`${forms.join(" with ")} in one query`, "each query uses one of LATEST ON, ASOF JOIN, WINDOW JOIN, OVER, SAMPLE BY or GROUP BY; run them as separate queries");
    const derived = items.find((i) => i.kind === "derived");
    const aggregated = has("agg") || has("bucket");
    if (derived !== undefined && (forms.length > 0 || aggregated)) {
      throw refuse(`the scalar function ${derived.agg.name}() with ${forms[0] ?? "aggregates"}`, "scalar user-defined functions add columns to plain SELECTs (range scans); aggregate with a user-defined aggregate instead");
    }
    if (ext.latest) return this.latest(items);
    if (ext.join?.kind === "asof") return this.asof(items, ext.join.tolerance);
    if (ext.join?.kind === "window") return this.windowJoin(items, ext.join.before!, ext.join.after!);
    if (ext.sample) return this.sample(items, ext.sample.bucket, ext.sample.fill);
    if (has("over")) return this.rolling(items);
    if (groupBy.length > 0 || has("agg") || has("bucket")) return this.groupBy(items, groupBy);
    return this.range(items);
  }

  private plainOnly(items: readonly Item[], form: string): void {
    const bad = items.find((i) => i.kind !== "col" && i.kind !== "star");
    if (bad) throw refuse(`${bad.kind === "bucket" ? "time_bucket" : "an aggregate"} in ${form}`, `${form} returns rows; select columns, or use GROUP BY / SAMPLE BY for aggregates`);
    const r = items.find((i) => i.kind === "col" && i.side === "right");
    if (r && this.right === undefined) throw malformed("a right-side column without a join", "join a table first");
  }

  private range(items: Item[]): Json {
    const derived = items.flatMap((i) => (i.kind === "derived" ? [i.agg] : []));
    const plain = items.filter((i) => i.kind !== "derived");
    this.plainOnly(plain, "SELECT");
    // Only derived columns selected: no value column besides what they need is asked for.
    const columns = this.valueColumns(plain, "left");
    const limit = this.limit();
    return { op: "range", ...this.common(), ...(columns === undefined ? {} : { columns }), ...(derived.length === 0 ? {} : { derived }), ...this.sortOf(true, "time"), ...(limit === undefined ? {} : { limit }) };
  }

  private latest(items: Item[]): Json {
    const l = this.ext.latest!;
    const kw = l.op === "lastBy" ? "LATEST" : "EARLIEST";
    this.plainOnly(items, `${kw} ON`);
    if (l.partition.split(".").pop() !== this.left.sym) throw refuse(`${kw} ... PARTITION BY ${l.partition}`, `partition by the symbol column ${this.left.sym}`);
    if (l.on !== undefined && l.on.split(".").pop() !== this.left.ts) throw refuse(`${kw} ON ${l.on}`, `order by the time column: ${kw} ON ${this.left.ts} PARTITION BY ${this.left.sym}`);
    this.noLimit(`${kw} ON`);
    const sort = this.sortOf(false, "symbol");
    const columns = this.valueColumns(items, "left");
    return { op: l.op, ...this.common(), ...(columns === undefined ? {} : { columns }), ...(l.at === undefined ? {} : { at: "micros" in l.at ? l.at.micros : timestampOf(this.nowMicros + l.at.nowPlus, `${kw} BY ... AT`) }), ...sort };
  }

  private rightSide(items: readonly Item[]): Json {
    const rc = this.valueColumns(items, "right");
    return { table: this.right!.table, ...(rc === undefined ? {} : { columns: rc }) };
  }

  private asof(items: Item[], tolerance: string | number | undefined): Json {
    this.plainOnly(items, "ASOF JOIN");
    this.noLimit("ASOF JOIN");
    const columns = this.valueColumns(items, "left");
    return { op: "asof", ...this.common(), ...(columns === undefined ? {} : { columns }), right: this.rightSide(items), ...(tolerance === undefined ? {} : { tolerance }), ...this.sortOf(false, "time") };
  }

  private windowJoin(items: Item[], before: string | number, after: string | number): Json {
    this.noLimit("WINDOW JOIN");
    const aggregates: Agg[] = [];
    for (const i of items) {
      if (i.kind === "agg") {
        // count(*) counts the right rows in the window; a column aggregate must name a right column.
        if (i.side !== "right" && i.agg.column !== undefined) throw malformed(`${i.agg.fn}(${i.agg.column ?? "*"}) in WINDOW JOIN aggregates the left table`, "aggregate columns of the joined (right) table, e.g. avg(q.bid)");
        aggregates.push(i.agg);
      } else if (i.kind === "over" || i.kind === "bucket") throw refuse(`${i.kind === "over" ? "OVER" : "time_bucket"} in WINDOW JOIN`, "select left columns and aggregates of right columns");
      else if (i.kind === "col" && i.side === "right") throw malformed(`the right column ${i.name} in WINDOW JOIN`, "aggregate it: avg(q.bid), last(q.bid), ...");
    }
    if (aggregates.length === 0) throw malformed("WINDOW JOIN without aggregates", "add aggregates of the right table, e.g. count(*), avg(q.bid)");
    const plain = items.filter((i) => i.kind === "col" || (i.kind === "star" && i.side !== "right"));
    const columns = this.valueColumns(plain, "left");
    return { op: "windowJoin", ...this.common(), ...(columns === undefined ? {} : { columns }), right: { table: this.right!.table }, before, after, aggregates, ...this.sortOf(false, "time") };
  }

  private rolling(items: Item[]): Json {
    this.noLimit("OVER");
    const overs = items.flatMap((i) => (i.kind === "over" ? [i] : []));
    const bad = items.find((i) => i.kind === "agg" || i.kind === "bucket");
    if (bad) throw refuse("aggregates with and without OVER in one query", "give every aggregate the same OVER (...) window, or use GROUP BY in a separate query");
    for (const o of overs) {
      const p = o.spec.partition.map((x) => x.split(".").pop());
      const ord = o.spec.order;
      if (p.length !== 1 || p[0] !== this.left.sym) throw refuse(`OVER (PARTITION BY ${o.spec.partition.join(", ") || "nothing"})`, `rolling windows run per symbol: PARTITION BY ${this.left.sym}`);
      if (ord.length > 1 || (ord.length === 1 && (ord[0]!.column.split(".").pop() !== this.left.ts || ord[0]!.desc))) throw refuse(`OVER (... ORDER BY ${ord.map((x) => x.column).join(", ")})`, `rolling windows run in time order: ORDER BY ${this.left.ts}`);
    }
    const framed = overs.filter((o) => o.agg.fn !== "ema" || o.spec.frame !== undefined);
    const frames = new Set(framed.map((o) => JSON.stringify(o.spec.frame ?? null)));
    if (frames.size > 1) throw refuse("different window frames in one query", "give every OVER the same frame, or run one query per frame");
    const frame = framed[0]?.spec.frame;
    let window: Json;
    if (framed.length === 0) window = { rows: 1 }; // only ema: it runs over every row of the symbol, whatever the frame.
    else if (frame === undefined) throw malformed("OVER without a frame", "add RANGE INTERVAL '5m' PRECEDING (a time window) or ROWS 10 PRECEDING (a row count)");
    else if (frame.kind === "unbounded") throw refuse("an UNBOUNDED PRECEDING frame", "give a finite window (RANGE INTERVAL '1d' PRECEDING), or use GROUP BY sym for whole-range aggregates");
    else window = frame.kind === "range" ? { window: frame.duration } : { rows: frame.rows };
    const columns = this.valueColumns(items.filter((i) => i.kind !== "over"), "left");
    return { op: "rolling", ...this.common(), ...(columns === undefined ? {} : { columns }), ...window, aggregates: overs.map((o) => o.agg), ...this.sortOf(false, "symbol") };
  }

  private groupBy(items: Item[], groupBy: Node[]): Json {
    this.noLimit("GROUP BY");
    const aliases = new Map(items.flatMap((i) => (i.kind === "bucket" && i.alias !== undefined ? [[i.alias, i.bucket] as const] : [])));
    let bySymbol = false;
    let bucket: string | number | undefined;
    for (const g of groupBy) {
      const c = colRef(g);
      if (c !== undefined && c.name === this.left.sym) bySymbol = true;
      else if (c !== undefined && aliases.has(c.name)) bucket = aliases.get(c.name);
      else if (callOf(g)?.name === "time_bucket") bucket = this.bucketOf(g);
      else throw refuse(`GROUP BY ${show(g)}`, `group by ${this.left.sym} and/or time_bucket('1m', ${this.left.ts})`);
    }
    for (const i of items) {
      if (i.kind === "star") throw refuse("* with GROUP BY", "select the group keys and aggregates");
      if (i.kind === "col" && !(i.name === this.left.sym && bySymbol)) throw malformed(`the column ${i.name} is neither grouped nor aggregated`, `aggregate it (last(${i.name})) or add it to GROUP BY if it is ${this.left.sym}`);
      if (i.kind === "bucket" && bucket === undefined) throw malformed("time_bucket in the select list but not in GROUP BY", "add it to GROUP BY");
    }
    const by = [...(bySymbol ? ["symbol"] : []), ...(bucket === undefined ? [] : ["bucket"])];
    const aggregates = items.flatMap((i) => (i.kind === "agg" ? [i.agg] : []));
    if (aggregates.length === 0) throw malformed("GROUP BY without aggregates", "add aggregates such as count(*), last(price); for the latest row per symbol use LATEST ON ts PARTITION BY sym");
    return { op: "groupBy", ...this.common(), by, ...(bucket === undefined ? {} : { bucket }), aggregates, ...this.groupOrder(bySymbol, bucket !== undefined) };
  }

  private groupOrder(bySymbol: boolean, byBucket: boolean): Json {
    const want = [...(bySymbol ? [this.left.sym] : []), ...(byBucket ? [this.left.ts] : [])];
    const ob = this.orderBy();
    const bucketAliases = new Set(this.items().flatMap((i) => (i.kind === "bucket" && i.alias !== undefined ? [i.alias] : [])));
    const names = ob.map((o) => (bucketAliases.has(o.column) ? this.left.ts : o.column));
    if (ob.some((o) => o.desc) || names.some((n, k) => n !== want[k])) throw refuse(`ORDER BY ${ob.map((o) => o.column).join(", ")} on grouped rows`, `grouped rows come ordered by ${want.join(", ") || "nothing"}; leave ORDER BY out or write exactly that`);
    return {};
  }

  private sample(items: Item[], bucket: string | number, fill: string | undefined): Json {
    this.noLimit("SAMPLE BY");
    const aggs = items.flatMap((i) => (i.kind === "agg" ? [i.agg] : []));
    const star = items.some((i) => i.kind === "star");
    if (items.some((i) => i.kind === "over" || i.kind === "bucket")) throw refuse("OVER or time_bucket with SAMPLE BY", "SAMPLE BY buckets by itself; select sym, ts and aggregates");
    if (star || (fill !== undefined && fill !== "none")) {
      // FILL is the bars operator's: its columns are open, high, low, close, volume, count, vwap.
      let price: string | undefined;
      let size: string | undefined;
      const one = (cur: string | undefined, v: string | undefined, what: string): string | undefined => {
        if (cur !== undefined && v !== undefined && cur !== v) throw refuse(`SAMPLE BY ... FILL over two ${what} columns (${cur}, ${v})`, "bars take one price and one size column: first/max/min/last/vwap(price), sum(size)");
        return v ?? cur;
      };
      for (const a of aggs) {
        if (["first", "last", "min", "max", "vwap"].includes(a.fn)) price = one(price, a.column, "price");
        if (a.fn === "vwap") size = one(size, a.weight, "size");
        else if (a.fn === "sum") size = one(size, a.column, "size");
        else if (!["first", "last", "min", "max", "count"].includes(a.fn)) throw refuse(`${a.fn}() with SAMPLE BY ... FILL`, "bars have open, high, low, close, volume, count and vwap: use first/max/min/last(price), sum(size), count(*), vwap(price, size); or drop FILL for any aggregate");
      }
      for (const i of items) if (i.kind === "col" && i.name !== this.left.sym && i.name !== this.left.ts) throw malformed(`the column ${i.name} with SAMPLE BY`, `aggregate it: first(${i.name}), last(${i.name}), ...`);
      const range = this.common();
      if (fill !== undefined && fill !== "none") {
        // Filling makes a row per bucket from t0 to t1: without a start that is every bucket since 1970.
        if (range.t0 === undefined) throw malformed("SAMPLE BY ... FILL needs the start of the time range", "add WHERE ts >= now() - INTERVAL '1h' (buckets are filled from there)");
        // No end given: fill up to now, not to the model's default end (year 2200).
        if (range.t1 === undefined) range.t1 = this.nowMicros + 1;
      }
      return { op: "bars", ...range, bucket, ...(price === undefined ? {} : { price }), ...(size === undefined ? {} : { size }), ...(fill === undefined || fill === "none" ? {} : { fill }), ...this.sortOf(false, "symbol") };
    }
    let bySymbol = false;
    for (const i of items) {
      if (i.kind === "col" && i.name === this.left.sym) bySymbol = true;
      else if (i.kind === "col" && i.name !== this.left.ts) throw malformed(`the column ${i.name} with SAMPLE BY`, `aggregate it (last(${i.name})), or select ${this.left.sym}, ${this.left.ts} and aggregates`);
    }
    if (aggs.length === 0) throw malformed("SAMPLE BY without aggregates", "add aggregates (first(price), max(price), sum(size)), or SELECT * for OHLCV bars");
    return { op: "groupBy", ...this.common(), by: [...(bySymbol ? ["symbol"] : []), "bucket"], bucket, aggregates: aggs };
  }
}

function checkStatement(ast: Node): void {
  const type = String(ast?.type ?? "unknown");
  if (type !== "select") {
    throw refuse(`a ${type.toUpperCase()} statement`, type === "insert" ? "ingest with POST /v1/ingest/<table> (JSON lines, CSV, line protocol, Arrow) or a publisher" : "queries are SELECTs; tables are changed with pxctl apply -f spec.yaml");
  }
  if (ast.with) throw refuse("WITH (common table expressions)", "query the table directly; run the inner query on its own");
  if (ast._next || ast.set_op) throw refuse(`${String(ast.set_op ?? "UNION").toUpperCase()}`, "run the queries separately and combine the results in the client");
  if (ast.distinct?.type) throw refuse("SELECT DISTINCT", "for the latest row of each symbol use LATEST ON ts PARTITION BY sym; for distinct symbols GROUP BY sym with count(*)");
  if (ast.into?.position) throw refuse("SELECT INTO", "read the result from the response");
}

// Parsing is most of a compile (node-sql-parser's PEG parser: hundreds of µs
// per statement, the rest tens); dashboards and pxctl --watch send the same text
// again and again. Parsed statements are kept by their text, least recently
// used out first; a new text of a known shape (other literals) binds its
// literals into that shape's parse (template.ts). The AST is only read after parsing, and what depends on the
// catalog (column names) is compiled per call, so a spec change is seen at once.
const PARSED_MAX = 256;
const parsed = new Map<string, { ext: Extracted; ast: Node }>();

function parsedOf(sql: string): { ext: Extracted; ast: Node } {
  const hit = parsed.get(sql);
  if (hit !== undefined) {
    parsed.delete(sql);
    parsed.set(sql, hit);
    return hit;
  }
  const ext = extract(sql);
  const ast = parseShaped(ext.sql);
  checkStatement(ast);
  const p = { ext, ast };
  parsed.set(sql, p);
  if (parsed.size > PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  return p;
}

/**
 * Compiles one SQL statement to the JSON query model; throws QueryError
 * INVALID_ARGUMENT naming what is not supported. `nowMicros` is what now()
 * means (default: the wall clock; tests pass their own).
 */
export function compileSql(sql: string, tables: SqlTables = () => undefined, nowMicros: number = Date.now() * 1000, functions: SqlFunctions = () => undefined): CompiledSql {
  if (sql.trim() === "") throw malformed("the statement is empty", "send a SELECT, e.g. SELECT * FROM trades LATEST ON ts PARTITION BY sym");
  const { ext, ast } = parsedOf(sql);
  const query = new Compiler(ast, ext, tables, nowMicros, functions).compile();
  // The model's own validation: its messages name the field and the fix, and nothing invalid leaves here.
  parseQuery(query);
  return { explain: ext.explain, query };
}
