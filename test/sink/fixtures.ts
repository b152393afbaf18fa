// Shared helpers of the sink unit tests: WAL records as the sink holds them,
// and an in-memory ClickHouse table behind `FlushIo` that fails on command,
// including the 18.16 behaviour of committing a prefix of an interrupted INSERT.
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { ClickhouseUnavailableError } from "../../src/clickhouse/index.js";
import type { FlushIo, InsertPlan, SinkRecord } from "../../src/sink/index.js";

export const SPEC: TableSpec = parseTableSpec({
  name: "trades",
  columns: [
    { name: "price", type: "float64" },
    { name: "size", type: "int32" },
  ],
});

export const DAY_MICROS = 86_400_000_000;
/** 2024-01-02T00:00:00Z */
export const DAY0 = 19_724 * DAY_MICROS;

/** The project's seeded PRNG (mulberry32): a failing case reproduces. */
import { rng } from "../../src/demo/randomwalk.js";
export { rng };

export const SYMS = ["MSFT", "AAPL", "IBM", "BRK.B", "Äpfel", "ZZ"];

/** A batch of `rows` ticks from `t0`, spread over `spanMicros`, random symbols, mostly in time order. */
export function batch(rows: number, seed: number, t0 = DAY0 + 3_600_000_000, spanMicros = 1_000_000, symbols = SYMS): TickBatch {
  const r = rng(seed);
  const symbolIndex = new Uint32Array(rows);
  const ts = new Float64Array(rows);
  const price = new Float64Array(rows);
  const size = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    symbolIndex[i] = Math.floor(r() * symbols.length);
    // One row in five is late (back in time), like real feeds.
    ts[i] = t0 + Math.floor((i * spanMicros) / Math.max(1, rows)) - (r() < 0.2 ? Math.floor(r() * spanMicros) : 0);
    price[i] = Math.round(r() * 10_000) / 100;
    size[i] = 1 + Math.floor(r() * 1000);
  }
  return { rows, symbols, symbolIndex, ts, values: [price, size] };
}

export function record(lsn: number, b: TickBatch, receivedAtMs = 0): SinkRecord {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < b.rows; i++) {
    min = Math.min(min, b.ts[i]!);
    max = Math.max(max, b.ts[i]!);
  }
  return { lsn, batch: b, bytes: b.rows * 20, minTsMicros: min, maxTsMicros: max, receivedAtMs };
}

/** One row as the in-memory table holds it. */
export interface MemRow {
  readonly lsn: number;
  readonly row: number;
  readonly sym: string;
  readonly ts: number;
  readonly price: number;
}

/** How the next INSERT ends. */
export type InsertFault =
  | { readonly kind: "ok" }
  /** Refused before anything was sent (ECONNREFUSED). */
  | { readonly kind: "refused" }
  /** The connection broke after `rows` rows of the body were committed. */
  | { readonly kind: "prefix"; readonly rows: number }
  /** Committed, but the answer was lost. */
  | { readonly kind: "lostAnswer" }
  /**
   * Timed out unseen (queued in a stalled server's socket, not in its process
   * list), then run by the server right after the next question about what
   * landed was answered: lands only if the shard's fence is still its token.
   */
  | { readonly kind: "late" };

/** In-memory stand-in for one ClickHouse table of one shard. */
export class MemoryClickhouse implements FlushIo {
  readonly rows: MemRow[] = [];
  readonly faults: InsertFault[] = [];
  inserts = 0;
  landedQueries = 0;
  /** The shard's fence (src/clickhouse/fence.ts): an INSERT lands only while it is still the fence it was sent under. */
  fence = 0;
  /** INSERTs that timed out unseen and run later (`late` faults), with the fence they were sent under. */
  private readonly queued: { plan: InsertPlan; fence: number }[] = [];

  /** `fenced: false` is the negative control: raising the fence does nothing. */
  constructor(private readonly fenced = true) {}

  async raiseFence(): Promise<void> {
    if (this.fenced) this.fence++;
  }

  /** The server gets to the queued INSERTs: each lands unless the fence moved past it. */
  runQueued(): void {
    for (const q of this.queued.splice(0)) if (q.fence === this.fence) this.commit(q.plan, q.plan.rows);
  }

  async waitQueryGone(): Promise<boolean> {
    return true;
  }

  async landedCounts(from: number, to: number): Promise<Map<number, number>> {
    this.landedQueries++;
    const out = new Map<number, number>();
    for (const r of this.rows) if (r.lsn >= from && r.lsn <= to) out.set(r.lsn, (out.get(r.lsn) ?? 0) + 1);
    // The worst moment for a queued INSERT to run: just after the answer.
    this.runQueued();
    return out;
  }

  async landedRowSets(lsns: readonly number[]): Promise<Map<number, number[]>> {
    const want = new Set(lsns);
    const out = new Map<number, number[]>();
    for (const r of this.rows) {
      if (!want.has(r.lsn)) continue;
      const list = out.get(r.lsn) ?? [];
      list.push(r.row);
      out.set(r.lsn, list);
    }
    for (const l of out.values()) l.sort((a, b) => a - b);
    return out;
  }

  async insert(plan: InsertPlan, queryId: string): Promise<void> {
    this.inserts++;
    const fault = this.faults.shift() ?? { kind: "ok" };
    if (fault.kind === "refused") throw new ClickhouseUnavailableError("mem://", "ECONNREFUSED", "refused", false, { queryId });
    if (fault.kind === "late") {
      this.queued.push({ plan, fence: this.fence });
      throw new ClickhouseUnavailableError("mem://", "ETIMEDOUT", "no answer", true, { queryId });
    }
    this.commit(plan, fault.kind === "prefix" ? Math.min(fault.rows, plan.rows) : plan.rows);
    if (fault.kind !== "ok") throw new ClickhouseUnavailableError("mem://", "ECONNRESET", "connection reset", true, { queryId });
  }

  private commit(plan: InsertPlan, n: number): void {
    for (let i = 0; i < n; i++) {
      this.rows.push({
        lsn: plan.lsn[i]!,
        row: plan.row[i]!,
        sym: plan.batch.symbols[plan.batch.symbolIndex[i]!]!,
        ts: plan.batch.ts[i]!,
        price: plan.batch.values[0]![i]!,
      });
    }
  }

  /** `(lsn, row)` pairs held more than once, and those of `records` missing. */
  check(records: readonly SinkRecord[]): { duplicates: number; missing: number; extra: number } {
    const seen = new Map<string, number>();
    for (const r of this.rows) seen.set(`${r.lsn}:${r.row}`, (seen.get(`${r.lsn}:${r.row}`) ?? 0) + 1);
    let duplicates = 0;
    for (const n of seen.values()) if (n > 1) duplicates += n - 1;
    let missing = 0;
    let expected = 0;
    for (const rec of records) {
      for (let i = 0; i < rec.batch.rows; i++) {
        expected++;
        if (!seen.has(`${rec.lsn}:${i}`)) missing++;
      }
    }
    return { duplicates, missing, extra: seen.size - (expected - missing) };
  }
}
