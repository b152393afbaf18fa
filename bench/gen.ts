// Deterministic market-data generator for benchmarks and tests: seeded
// random-walk trades and quotes over one US trading day (09:30-16:00 New York,
// taken as 14:30-21:00 UTC), as TickBatches with microsecond timestamps.
import type { TickBatch } from "../src/codec/tickbatch.js";
import { rng } from "../src/demo/randomwalk.js";

export interface GenOptions {
  /** Distinct symbols, named SYM00000, SYM00001, ... */
  readonly symbols: number;
  /** Total ticks over the day. */
  readonly ticks: number;
  /** Rows per batch (default 1000). */
  readonly batchRows?: number;
  /** PRNG seed (default 42): the same options always give the same batches. */
  readonly seed?: number;
  /** Fraction of ticks that arrive late (default 0). */
  readonly lateFraction?: number;
  /** A late tick's timestamp is 1..maxLatenessMicros behind its arrival (default 100 ms). */
  readonly maxLatenessMicros?: number;
  /** Trading day, YYYY-MM-DD (default 2024-01-02). */
  readonly day?: string;
}

export type GenKind = "trades" | "quotes";

/** The project's seeded PRNG (mulberry32), shared with the demo feed. */
export const mulberry32 = rng;

export function symbolNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `SYM${String(i).padStart(5, "0")}`);
}

/** [open, close) of the trading day in microseconds since the epoch. */
export function sessionMicros(day = "2024-01-02"): { readonly openMicros: number; readonly closeMicros: number } {
  const open = Date.parse(`${day}T14:30:00Z`);
  if (Number.isNaN(open)) throw new Error(`gen: day must be YYYY-MM-DD, got ${day}`);
  return { openMicros: open * 1000, closeMicros: (open + 6.5 * 3600 * 1000) * 1000 };
}

/**
 * Batches in arrival order (WAL order). Arrival times are spread evenly over the
 * session; each tick picks a symbol uniformly; late ticks carry an older timestamp.
 * Trades columns: price, size. Quotes columns: bid, ask, bid_size, ask_size.
 */
export function* genBatches(kind: GenKind, opts: GenOptions): Generator<TickBatch> {
  const nsym = opts.symbols;
  const batchRows = opts.batchRows ?? 1000;
  const rand = mulberry32(opts.seed ?? 42);
  const lateFraction = opts.lateFraction ?? 0;
  const maxLate = opts.maxLatenessMicros ?? 100_000;
  const { openMicros, closeMicros } = sessionMicros(opts.day);
  const step = (closeMicros - openMicros) / opts.ticks;
  const names = symbolNames(nsym);
  const price = new Float64Array(nsym);
  for (let s = 0; s < nsym; s++) price[s] = 10 + Math.round(rand() * 49_000) / 100;
  const ncols = kind === "trades" ? 2 : 4;
  const remap = new Int32Array(nsym).fill(-1);

  for (let first = 0; first < opts.ticks; first += batchRows) {
    const n = Math.min(batchRows, opts.ticks - first);
    const symbols: string[] = [];
    const touched: number[] = [];
    const symbolIndex = new Uint32Array(n);
    const ts = new Float64Array(n);
    const values = Array.from({ length: ncols }, () => new Float64Array(n));
    for (let r = 0; r < n; r++) {
      const s = Math.floor(rand() * nsym);
      let m = remap[s]!;
      if (m < 0) {
        m = symbols.length;
        remap[s] = m;
        symbols.push(names[s]!);
        touched.push(s);
      }
      symbolIndex[r] = m;
      let t = openMicros + Math.floor((first + r) * step);
      if (lateFraction > 0 && rand() < lateFraction) t = Math.max(openMicros, t - 1 - Math.floor(rand() * maxLate));
      ts[r] = t;
      // Random walk in basis points, rounded to the cent, never below one cent.
      const p = Math.max(0.01, Math.round(price[s]! * (1 + (rand() - 0.5) * 0.002) * 100) / 100);
      price[s] = p;
      if (kind === "trades") {
        values[0]![r] = p;
        values[1]![r] = 100 * (1 + Math.floor(rand() * 10));
      } else {
        const half = Math.max(0.01, Math.round(p * 0.0005 * 100) / 100);
        values[0]![r] = Math.round((p - half) * 100) / 100;
        values[1]![r] = Math.round((p + half) * 100) / 100;
        values[2]![r] = 100 * (1 + Math.floor(rand() * 20));
        values[3]![r] = 100 * (1 + Math.floor(rand() * 20));
      }
    }
    for (const s of touched) remap[s] = -1;
    yield { rows: n, symbols, symbolIndex, ts, values };
  }
}

export function tradesBatches(opts: GenOptions): TickBatch[] {
  return Array.from(genBatches("trades", opts));
}

export function quotesBatches(opts: GenOptions): TickBatch[] {
  return Array.from(genBatches("quotes", opts));
}
