// Realistic random-walk market data for demos and benchmarks: per symbol a
// log-normal mid price walk, trades around the mid, quotes with a spread.
import { selectRows } from "../codec/tickbatch.js";
import type { TickBatch } from "../codec/tickbatch.js";

/** Small, fast, seeded PRNG (mulberry32): the same seed gives the same ticks. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` distinct synthetic tickers, in a fixed order: AAA, AAB, ..., ZZZ, AAAA, ... */
export function symbolNames(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    // Fixed width per range (AAA..ZZZ, then AAAA..ZZZZ, ...): every name distinct. Padding shorter names with X made
    // "A", "AX" and "AXX" one name (1,000 names held 963 distinct symbols).
    let k = i;
    let width = 3;
    while (k >= 26 ** width) {
      k -= 26 ** width;
      width++;
    }
    let s = "";
    for (let d = 0; d < width; d++) {
      s = String.fromCharCode(65 + (k % 26)) + s;
      k = Math.floor(k / 26);
    }
    out.push(s);
  }
  return out;
}

/** Tickers a user will try first; the demo publishes these, then synthetic ones (AAA, AAB, ...). */
export const WELL_KNOWN_SYMBOLS: readonly string[] = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM", "JPM", "XOM"];

/** `n` demo symbols: the well-known tickers first, then synthetic names. */
export function demoSymbols(n: number): string[] {
  const known = WELL_KNOWN_SYMBOLS.slice(0, n);
  // A synthetic name may spell a well-known ticker (IBM, JPM, XOM): skipped, so every symbol is distinct.
  const taken = new Set(known);
  const synthetic = symbolNames(n - known.length + WELL_KNOWN_SYMBOLS.length).filter((s) => !taken.has(s));
  return [...known, ...synthetic.slice(0, n - known.length)];
}

export class RandomWalk {
  private readonly mids: Float64Array;
  private readonly next: () => number;
  tsMicros: number;

  constructor(
    readonly symbols: readonly string[],
    seed = 1,
    startMicros = Date.now() * 1000,
  ) {
    this.next = rng(seed);
    this.mids = Float64Array.from(symbols, () => 20 + this.next() * 480);
    this.tsMicros = startMicros;
  }

  private step(sym: number): number {
    const m = this.mids[sym]! * Math.exp((this.next() - 0.5) * 0.002);
    this.mids[sym] = m;
    return m;
  }

  /** `rows` trades spread evenly over `spanMicros`, symbols drawn at random (or in turn with `inTurn`: one each). */
  trades(rows: number, spanMicros: number, inTurn = false): TickBatch {
    const symbolIndex = new Uint32Array(rows);
    const ts = new Float64Array(rows);
    const price = new Float64Array(rows);
    const size = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      const s = inTurn ? i % this.symbols.length : Math.floor(this.next() * this.symbols.length);
      symbolIndex[i] = s;
      ts[i] = this.tsMicros + Math.floor((i * spanMicros) / rows);
      price[i] = Math.round(this.step(s) * 100) / 100;
      size[i] = 100 * (1 + Math.floor(this.next() * 10));
    }
    this.tsMicros += spanMicros;
    return compact({ rows, symbols: this.symbols, symbolIndex, ts, values: [price, size] });
  }

  /** `rows` quotes (bid, ask, bid_size, ask_size); `inTurn` as for trades. */
  quotes(rows: number, spanMicros: number, inTurn = false): TickBatch {
    const symbolIndex = new Uint32Array(rows);
    const ts = new Float64Array(rows);
    const bid = new Float64Array(rows);
    const ask = new Float64Array(rows);
    const bidSize = new Float64Array(rows);
    const askSize = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      const s = inTurn ? i % this.symbols.length : Math.floor(this.next() * this.symbols.length);
      const mid = this.step(s);
      const half = Math.max(0.01, mid * 0.0002);
      symbolIndex[i] = s;
      ts[i] = this.tsMicros + Math.floor((i * spanMicros) / rows);
      bid[i] = Math.round((mid - half) * 100) / 100;
      ask[i] = Math.round((mid + half) * 100) / 100 + 0.01;
      bidSize[i] = 100 * (1 + Math.floor(this.next() * 20));
      askSize[i] = 100 * (1 + Math.floor(this.next() * 20));
    }
    this.tsMicros += spanMicros;
    return compact({ rows, symbols: this.symbols, symbolIndex, ts, values: [bid, ask, bidSize, askSize] });
  }
}

/** Keeps only the symbols a batch uses, as a real publisher's batch would. */
function compact(b: TickBatch): TickBatch {
  return selectRows(b, Uint32Array.from({ length: b.rows }, (_, i) => i));
}
