// Reading a raw feed's compacted WAL records back from ClickHouse rows
// (src/feed/gap.ts), against a fake of the ClickHouse read: every record
// arrives whole, once, in LSN order, whatever the page size (pages ending
// inside a record, a record larger than a page); a record ClickHouse does not
// hold whole is refused by name. An as-of feed's two tables come out merged
// in LSN order.
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { DecodedRows } from "../../src/clickhouse/index.js";
import { readTableGaps, readWalGap } from "../../src/feed/index.js";
import type { FeedRecord, GapReader, WalGap } from "../../src/feed/index.js";

const spec = parseTableSpec({ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }] }, "t");

interface Row {
  readonly lsn: number;
  readonly row: number;
  readonly shard: number;
  readonly sym: string;
  readonly ts: number;
  readonly price: number;
}

/** Records of `sizes` rows at LSNs 1, 2, ... alternating shards 0 and 1, symbols cycling over 3 names. */
function table(sizes: readonly number[]): Row[] {
  const rows: Row[] = [];
  sizes.forEach((n, k) => {
    for (let r = 0; r < n; r++) rows.push({ lsn: k + 1, row: r, shard: k % 2, sym: `S${(k + r) % 3}`, ts: 1_000 * (k + 1) + r, price: k * 1000 + r });
  });
  return rows;
}

/** The fake ClickHouse read: the rows of the gaps past the cursor in (_lsn, _row) order, at most `limit`; counts its calls. */
function reader(rows: readonly Row[], calls: { n: number }): GapReader {
  return async (gaps: readonly WalGap[], cursor: number, limit: number | undefined): Promise<DecodedRows> => {
    calls.n++;
    const hit = rows.filter((r) => r.lsn > cursor && gaps.some((g) => g.bucket === r.shard && r.lsn > g.after && r.lsn < g.below)).slice(0, limit ?? Infinity);
    const symbols = [...new Set(hit.map((r) => r.sym))];
    return {
      batch: { rows: hit.length, symbols, symbolIndex: Uint32Array.from(hit, (r) => symbols.indexOf(r.sym)), ts: Float64Array.from(hit, (r) => r.ts), values: [Float64Array.from(hit, (r) => r.price)] },
      lsn: Float64Array.from(hit, (r) => r.lsn),
      row: Uint32Array.from(hit, (r) => r.row),
      shard: Uint16Array.from(hit, (r) => r.shard),
    };
  };
}

async function readAll(rows: readonly Row[], gaps: readonly WalGap[], pageRows: number): Promise<{ recs: FeedRecord[]; calls: number }> {
  const recs: FeedRecord[] = [];
  const calls = { n: 0 };
  const n = await readWalGap(spec, gaps, reader(rows, calls), async (r) => void recs.push(r), pageRows);
  expect(n).toBe(recs.length);
  return { recs, calls: calls.n };
}

/** What the feed should get: the gaps' records as rows (lsn, row, symbol, ts, price). */
const flat = (recs: readonly FeedRecord[]) => recs.flatMap((r) => Array.from({ length: r.batch.rows }, (_, i) => [r.lsn, r.bucket, i, r.batch.symbols[r.batch.symbolIndex[i]!], r.batch.ts[i], r.batch.values[0]![i]]));
const want = (rows: readonly Row[], gaps: readonly WalGap[]) => rows.filter((r) => gaps.some((g) => g.bucket === r.shard && r.lsn > g.after && r.lsn < g.below)).map((r) => [r.lsn, r.shard, r.row, r.sym, r.ts, r.price]);

describe("feed - a raw feed's compacted WAL read back from ClickHouse", () => {
  const sizes = [5, 1, 7, 3, 12, 2, 9, 4, 30, 6];
  const rows = table(sizes);
  const gaps: WalGap[] = [
    { bucket: 0, after: 2, below: 9 },
    { bucket: 1, after: 0, below: 11 },
  ];

  it("gap - every record whole, once, in LSN order, each with its own symbols, for any page size", async () => {
    for (const page of [1, 2, 3, 5, 8, 13, 29, 31, 1000]) {
      const { recs } = await readAll(rows, gaps, page);
      expect(flat(recs), `page ${page}`).toEqual(want(rows, gaps));
      expect(recs.map((r) => r.lsn)).toEqual([...recs.map((r) => r.lsn)].sort((a, b) => a - b));
      expect(new Set(recs.map((r) => r.lsn)).size).toBe(recs.length);
      for (const r of recs) expect(new Set(r.batch.symbols).size, `record ${r.lsn}: only its symbols`).toBe(new Set(Array.from(r.batch.symbolIndex)).size);
    }
  });

  it("gap - a record larger than a page is read alone; nothing to read costs one query", async () => {
    const big = table([3, 50, 2]);
    const g: WalGap[] = [{ bucket: 0, after: 0, below: 4 }, { bucket: 1, after: 0, below: 4 }];
    const { recs } = await readAll(big, g, 10);
    expect(recs.map((r) => [r.lsn, r.batch.rows])).toEqual([[1, 3], [2, 50], [3, 2]]);
    expect(flat(recs)).toEqual(want(big, g));
    expect((await readAll(rows, [{ bucket: 0, after: 20, below: 30 }], 10)).calls).toBe(1);
  });

  it("gap - a record ClickHouse does not hold whole is refused naming it (negative control: a row missing in the middle)", async () => {
    const holed = rows.filter((r) => !(r.lsn === 5 && r.row === 4));
    await expect(readAll(holed, gaps, 1000)).rejects.toThrow(/ClickHouse does not hold WAL record 5 whole \(row 4 is 5\)/);
  });

  it("two tables - an as-of feed's gaps are read side by side and come out merged in LSN order, every record once, at any page size", async () => {
    // Records of `trades` at odd LSNs, of `quotes` at even ones (the table reads its rows of its own LSNs only).
    const all = table(sizes);
    const quotesSpec = parseTableSpec({ name: "quotes", shards: 2, columns: [{ name: "price", type: "float64" }] }, "t");
    const of = (odd: boolean) => all.filter((r) => r.lsn % 2 === (odd ? 1 : 0));
    const gaps: WalGap[] = [
      { bucket: 0, after: 0, below: 100 },
      { bucket: 1, after: 0, below: 100 },
    ];
    for (const pageRows of [4, 7, 1000]) {
      const recs: FeedRecord[] = [];
      const calls = { n: 0 };
      const n = await readTableGaps(
        [
          { spec, gaps, read: reader(of(true), calls) },
          { spec: quotesSpec, gaps, read: reader(of(false), calls) },
        ],
        async (r) => void recs.push(r),
        pageRows,
      );
      expect(n).toBe(sizes.length);
      expect(recs.map((r) => r.lsn)).toEqual(sizes.map((_, k) => k + 1));
      expect(recs.map((r) => r.table)).toEqual(sizes.map((_, k) => (k % 2 === 0 ? "trades" : "quotes")));
      expect(flat(recs)).toEqual(want(all, gaps));
    }
  });
});
