// POST /v1/chart?points=N: the same body, token and errors as POST /v1/query
// (the query route runs it and answers Arrow), shaped for a chart and
// downsampled here on the server so a browser never receives a million
// points: bars (open/high/low/close columns) as candles merged to at most N,
// anything else as one line per symbol and numeric column, M4-reduced to at
// most N points. Times are in milliseconds (fractions keep the µs).
import type { IncomingMessage } from "node:http";
import { tableFromIPC, Type } from "apache-arrow";
import type { Table, Vector } from "apache-arrow";
import type { HttpReply, Route } from "../http.js";
import { downsampleCandles, downsampleLine } from "./downsample.js";
import { json } from "./reply.js";

const DEFAULT_POINTS = 2000;
const MAX_POINTS = 20_000;
/** Lines beyond this many (symbol, column) pairs are left out, with a note. */
const MAX_SERIES = 12;
/** Columns that are counts or sizes, not prices: charted only when nothing else is. */
const QUANTITY = /^(size|qty|quantity|volume|count|n|trades)$/i;

const numbersOf = (v: Vector): number[] => {
  const a = v.toArray() as ArrayLike<number | bigint>;
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
};

const isNumeric = (t: Type): boolean => t === Type.Float || t === Type.Int || t === Type.Decimal;

export interface ChartSeries {
  readonly name: string;
  readonly sym: string | null;
  readonly column: string;
  /** Lines: [ms, value]; candles: [ms, open, high, low, close]. */
  readonly points: number[][];
}

export interface ChartAnswer {
  readonly kind: "candles" | "lines" | "none";
  readonly rows: number;
  readonly bucketMs: number;
  readonly series: readonly ChartSeries[];
  readonly notes: readonly string[];
}

/** The chart of a query result (pure over the Arrow table). */
export function chartOf(table: Table, maxPoints: number): ChartAnswer {
  const fields = table.schema.fields;
  const timeAt = fields.findIndex((f) => f.typeId === Type.Timestamp);
  const rows = table.numRows;
  if (timeAt < 0) return { kind: "none", rows, bucketMs: 0, series: [], notes: ["the result has no time column to chart"] };
  const symAt = fields.findIndex((f) => f.typeId === Type.Utf8 || f.typeId === Type.Dictionary);
  const times = numbersOf(table.getChildAt(timeAt)!);
  const syms = symAt < 0 ? undefined : table.getChildAt(symAt)!;
  // Rows of each symbol, in time order (results come by symbol or by time; a stable sort keeps either right).
  const groups = new Map<string | null, number[]>();
  for (let i = 0; i < rows; i++) {
    const s = syms === undefined ? null : (syms.get(i) as string | null);
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push(i);
  }
  for (const g of groups.values()) g.sort((a, b) => times[a]! - times[b]!);
  const col = (name: string): number[] | undefined => {
    const j = fields.findIndex((f) => f.name === name);
    return j < 0 || !isNumeric(fields[j]!.typeId) ? undefined : numbersOf(table.getChildAt(j)!);
  };
  const ms = (us: number): number => us / 1000;
  const notes: string[] = [];
  let bucketUs = 0;
  const [open, high, low, close] = ["open", "high", "low", "close"].map(col);
  if (open && high && low && close) {
    const series: ChartSeries[] = [];
    for (const [sym, idx] of [...groups].slice(0, MAX_SERIES)) {
      const pick = (xs: number[]) => idx.map((i) => xs[i]!);
      const d = downsampleCandles({ timesUs: pick(times), open: pick(open), high: pick(high), low: pick(low), close: pick(close) }, maxPoints);
      bucketUs = Math.max(bucketUs, d.bucketUs);
      series.push({ name: sym ?? "bars", sym, column: "ohlc", points: d.timesUs.map((t, k) => [ms(t), d.open[k]!, d.high[k]!, d.low[k]!, d.close[k]!]) });
    }
    if (groups.size > MAX_SERIES) notes.push(`${groups.size} symbols: the chart shows the first ${MAX_SERIES}`);
    return { kind: "candles", rows, bucketMs: bucketUs / 1000, series, notes };
  }
  const numeric = fields.map((f, j) => ({ f, j })).filter(({ f, j }) => j !== timeAt && isNumeric(f.typeId));
  const prices = numeric.filter(({ f }) => !QUANTITY.test(f.name));
  const charted = prices.length > 0 ? prices : numeric;
  if (charted.length === 0) return { kind: "none", rows, bucketMs: 0, series: [], notes: ["the result has no numeric column to chart"] };
  const pairs = [...groups].flatMap(([sym, idx]) => charted.map(({ f, j }) => ({ sym, idx, name: f.name, j })));
  if (pairs.length > MAX_SERIES) notes.push(`${pairs.length} lines (symbols x columns): the chart shows the first ${MAX_SERIES}`);
  const values = new Map<number, number[]>();
  const series = pairs.slice(0, MAX_SERIES).map(({ sym, idx, name, j }) => {
    if (!values.has(j)) values.set(j, numbersOf(table.getChildAt(j)!));
    const v = values.get(j)!;
    // Nulls (a FILL(NULL) bar, a rolling value before its window fills) are gaps, not zeros.
    const kept = idx.filter((i) => table.getChildAt(j)!.isValid(i));
    const d = downsampleLine({ timesUs: kept.map((i) => times[i]!), values: kept.map((i) => v[i]!) }, maxPoints);
    bucketUs = Math.max(bucketUs, d.bucketUs);
    return { name: sym === null ? name : `${sym} ${name}`, sym, column: name, points: d.timesUs.map((t, k) => [ms(t), d.values[k]!]) };
  });
  return { kind: "lines", rows, bucketMs: bucketUs / 1000, series, notes };
}

/** Wraps the query route: its answer (Arrow, or its error as it is) becomes a chart. */
export function chartRoute(query: Route): Route {
  return async (url: URL, method: string, req: IncomingMessage): Promise<HttpReply> => {
    const points = Number(url.searchParams.get("points") ?? DEFAULT_POINTS);
    if (!Number.isInteger(points) || points < 8 || points > MAX_POINTS) return json(400, { error: `points=${url.searchParams.get("points")}: use an integer from 8 to ${MAX_POINTS}`, code: 400 });
    const asArrow = new URL(url);
    asArrow.searchParams.set("format", "arrow");
    asArrow.searchParams.delete("points");
    const r = await query(asArrow, method, req);
    if (r.status !== 200) return r;
    const chart = chartOf(tableFromIPC(r.body as Uint8Array), points);
    const notes = r.headers?.["proxist-notes"];
    return json(200, { ...chart, complete: r.headers?.["proxist-complete"] !== "false", notes: [...chart.notes, ...(notes ? decodeURIComponent(notes).split("; ") : [])] });
  };
}
