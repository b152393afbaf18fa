// Query test workloads: seeded random ticks for a trades and a quotes table
// (many symbols, late ticks, equal timestamps), applied as WAL records to one
// HotTable per (table, bucket); every tick is also kept as a plain row for the
// oracle. `persist` plays the sink: it writes rows up to an LSN to ClickHouse.
import { bucketOf } from "../../protocols/routing.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { HotTable } from "../../src/hotset/index.js";
import { ProxistQueryEngine, staticSource } from "../../src/query/index.js";
import type { ColdSource, HotShard } from "../../src/query/index.js";
import type { WalTick } from "../helpers/walticks.js";

export const TENANT = "qt";
export const SHARDS = 2;

export const tradesSpec = (shards = SHARDS): TableSpec =>
  parseTableSpec({ name: "trades", shards, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] });
export const quotesSpec = (shards = SHARDS): TableSpec =>
  parseTableSpec({ name: "quotes", shards, columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] });

/** One tick as the oracle sees it: the shape walTicks reads back from the WAL. */
export type Tick = WalTick;

export interface WalRecord {
  readonly table: string;
  readonly bucket: number;
  readonly lsn: number;
  readonly batch: TickBatch;
}

/** The project's seeded PRNG (mulberry32): a failing case reproduces. */
import { rng } from "../../src/demo/randomwalk.js";
export { rng };

export const T_BASE = Date.UTC(2024, 0, 2, 14, 30) * 1000;
/** Ticks fall in [T_BASE, T_BASE + SPAN). Timestamps are multiples of 1 ms, so many are equal. */
export const SPAN = 20_000_000;

export interface Workload {
  readonly specs: readonly TableSpec[];
  readonly records: readonly WalRecord[];
  readonly ticks: readonly Tick[];
  readonly symbols: readonly string[];
}

/**
 * `records` WAL records per table, in arrival order, each for one shard.
 * Symbol "EARLY" only ticks in the first 10% of the span (so it can be fully
 * evicted: no hot rows); about 10% of ticks are late (up to 30% of the span behind).
 */
export function workload(seed: number, opts: { symbols?: number; records?: number; rowsPerRecord?: number } = {}): Workload {
  const rand = rng(seed);
  const nsym = opts.symbols ?? 7;
  const symbols = ["EARLY", ...Array.from({ length: nsym - 1 }, (_, i) => `S${i}`)];
  const specs = [tradesSpec(), quotesSpec()];
  const nrec = opts.records ?? 60;
  const per = opts.rowsPerRecord ?? 40;
  const records: WalRecord[] = [];
  const ticks: Tick[] = [];
  let lsn = 0;
  for (let r = 0; r < nrec; r++) {
    const clock = T_BASE + Math.floor(((r + 1) / nrec) * SPAN);
    for (const spec of specs) {
      for (let bucket = 0; bucket < spec.shards; bucket++) {
        const syms = symbols.filter((s) => bucketOf(s, spec.shards) === bucket && (s !== "EARLY" || clock < T_BASE + SPAN / 10));
        if (syms.length === 0) continue;
        const n = 1 + Math.floor(rand() * per);
        const symbolIndex = new Uint32Array(n);
        const ts = new Float64Array(n);
        const values = spec.columns.map(() => new Float64Array(n));
        for (let i = 0; i < n; i++) {
          symbolIndex[i] = Math.floor(rand() * syms.length);
          const late = rand() < 0.1 ? Math.floor(rand() * SPAN * 0.3) : Math.floor(rand() * (SPAN / nrec));
          ts[i] = Math.max(T_BASE, Math.floor((clock - late) / 1000) * 1000);
          values[0]![i] = 100 + Math.round(rand() * 1000) / 100;
          values[1]![i] = spec.name === "trades" ? 1 + Math.floor(rand() * 500) : 100 + Math.round(rand() * 1000) / 100 + 0.05;
        }
        lsn++;
        records.push({ table: spec.name, bucket, lsn, batch: { rows: n, symbols: syms, symbolIndex, ts, values } });
        for (let i = 0; i < n; i++) {
          ticks.push({ table: spec.name, sym: syms[symbolIndex[i]!]!, ts: ts[i]!, lsn, row: i, values: values.map((v) => v[i]!) });
        }
      }
    }
  }
  return { specs, records, ticks, symbols };
}

export interface Cluster {
  readonly tables: Map<string, HotShard[]>;
  readonly engine: (cold: ColdSource | undefined) => ProxistQueryEngine;
}

/** Applies every record to a HotTable per (table, bucket). */
export function buildHot(w: Workload, tenant = TENANT): Cluster {
  const tables = new Map<string, HotShard[]>();
  for (const spec of w.specs) {
    tables.set(
      spec.name,
      Array.from({ length: spec.shards }, (_, bucket) => ({ bucket, table: new HotTable(spec, { chunkRows: 64, firstChunkRows: 4, nextChunkRows: 16 }) })),
    );
  }
  for (const r of w.records) tables.get(r.table)![r.bucket]!.table.apply(r.lsn, r.batch);
  const source = staticSource(new Map([[tenant, new Map(w.specs.map((spec) => [spec.name, { spec, shards: tables.get(spec.name)! }]))]]));
  return { tables, engine: (cold) => new ProxistQueryEngine(cold === undefined ? { source } : { source, cold }) };
}
