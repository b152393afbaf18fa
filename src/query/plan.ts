// The load plan of a query over hot shards: per shard, which of [t0, t1) and the
// look-behind/ahead rows are in RAM and which below the horizon need
// ClickHouse, read from one synchronous look at P and H. Shared by the general
// load (load.ts) and lastBy's flat rows (lastrows.ts).
import { bucketOf } from "../../protocols/routing.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { ColdSlice, HotShard } from "./source.js";

export interface LoadRequest {
  readonly tenant: string;
  readonly spec: TableSpec;
  readonly shards: readonly HotShard[];
  /** undefined = every symbol the shards (and the cold store) hold. */
  readonly symbols: readonly string[] | undefined;
  readonly t0: number;
  readonly t1: number;
  /** Rows needed before t0 (per symbol). */
  readonly behind: number;
  /** Rows needed from t1 on (per symbol). */
  readonly ahead: number;
  /** Per value column (spec order): read it? */
  readonly wanted: readonly boolean[];
  /** Most rows a cold range read may return before the query is refused for its memory quota (absent: no cap). */
  readonly maxColdRows?: number;
  /**
   * Hot rows may come back as views of the hot set's memory instead of copies. A view is valid only until
   * the event loop turns: a record applied or an eviction moves rows in place. Only for a caller that uses
   * the rows before its next await on anything but this load (a fan-out waiting for remote parts, or a
   * join loading its other table from ClickHouse, held views across that wait and read moved rows).
   */
  readonly views?: boolean;
}

export interface ShardPlan {
  readonly shard: HotShard;
  readonly slice: ColdSlice;
  readonly symbols: readonly string[] | undefined;
  readonly needRange: boolean;
  readonly needBefore: boolean;
  readonly needAfter: boolean;
  readonly useSeam: boolean;
}

export function plan(req: LoadRequest): ShardPlan[] {
  const { spec, t0, t1 } = req;
  return req.shards.map((shard) => {
    const table = shard.table;
    const H = table.horizonMicros;
    const P = table.persistedLsn;
    const symbols = req.symbols?.filter((s) => bucketOf(s, spec.shards) === shard.bucket);
    const none = symbols !== undefined && symbols.length === 0;
    const slice: ColdSlice = { tenant: req.tenant, spec, shard: shard.bucket, persistedLsn: P, horizonMicros: H, symbols };
    // Nothing was ever evicted (H = 0): the cold side of the rule is empty.
    const hasCold = H > 0 && !none;
    const needRange = hasCold && t0 < H && t0 < t1;
    // One row behind a range starting at or above H is the seam cache row.
    const useSeam = hasCold && req.behind === 1 && t0 >= H;
    const needBefore = hasCold && req.behind > 0 && !useSeam;
    const needAfter = hasCold && req.ahead > 0 && t1 < H;
    return { shard, slice, symbols: none ? [] : symbols, needRange, needBefore, needAfter, useSeam };
  });
}
