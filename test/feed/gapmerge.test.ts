// pushMerged (src/feed/gapmerge.ts): compacted records of one shard and the
// WAL's records of another below them come out in LSN order; the WAL is read
// ahead only while deliveries are known to be stored (a consumer caught up
// never makes the reader wait); the first delivery past the gap is returned,
// not handed over. Negative control: merge off hands the gap over first.
import { describe, expect, it } from "vitest";
import { pushMerged } from "../../src/feed/index.js";
import type { FeedRecord } from "../../src/feed/index.js";

const rec = (bucket: number, lsn: number): FeedRecord => ({ table: "trades", bucket, lsn, batch: { rows: 0, symbols: [], symbolIndex: new Uint32Array(0), ts: new Float64Array(0), values: [] } });

/** A WAL whose first `stored` deliveries are there; asking past them waits for good (and is counted). */
function wal(lsns: number[], stored: number) {
  let i = 0;
  const w = {
    waited: 0,
    next: (): Promise<IteratorResult<number>> => {
      if (i < stored) return Promise.resolve({ done: false, value: lsns[i++]! });
      w.waited++;
      return new Promise(() => {});
    },
  };
  return w;
}

async function run(gapLsns: number[], walLsns: number[], stored: number, merge = true) {
  const order: string[] = [];
  const w = wal(walLsns, stored);
  const ahead = await pushMerged({
    gap: async (push) => {
      for (const l of gapLsns) await push(rec(0, l));
    },
    wal: w,
    stored,
    lsnOf: (m) => m,
    onGap: async (r) => void order.push(`g${r.lsn}`),
    onWal: (m) => void order.push(`w${m}`),
    merge,
  });
  return { order, ahead, waited: w.waited };
}

describe("gap merge", () => {
  it("gap merge - gap records and the WAL's records below them in LSN order; the first delivery past the gap is returned", async () => {
    const r = await run([2, 5, 9], [3, 4, 7, 10, 12], 5);
    expect(r.order).toEqual(["g2", "w3", "w4", "g5", "w7", "g9"]);
    expect(r.ahead).toBe(10);
    expect(r.waited).toBe(0);
  });

  it("gap merge - a WAL with nothing stored below the gap is never waited on", async () => {
    const r = await run([2, 5], [], 0);
    expect(r.order).toEqual(["g2", "g5"]);
    expect(r.ahead).toBeUndefined();
    expect(r.waited).toBe(0);
  });

  it("gap merge, negative control - merge off hands the gap over before the WAL's records below it", async () => {
    const r = await run([2, 5, 9], [3, 4, 7, 10, 12], 5, false);
    expect(r.order).toEqual(["g2", "g5", "g9"]);
  });
});
