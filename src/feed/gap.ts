// A feed that needs records below the WAL's start (a raw feed resuming from an
// old offset, a stateful one folding its history): compaction purged the
// records below the shard's compaction floor, but only after the sink had
// persisted them, so ClickHouse holds every row of them under their (_lsn,
// _row). They are read back page by page in (_lsn, _row) order and handed to
// the feed as the records they were, each whole: a page that ends inside a
// record is cut back to the record before, and a record larger than a page is
// read on its own. An as-of feed's two tables are read side by side, merged
// in LSN order.
import { QueryError } from "../../protocols/errors.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { DecodedRows } from "../clickhouse/index.js";
import type { ValueArray } from "../codec/tickbatch.js";
import type { FeedRecord } from "./operator.js";

/** Per shard: the feed has every record up to `after`; the WAL holds the shard's records from `below` on. */
export interface WalGap {
  readonly bucket: number;
  readonly after: number;
  readonly below: number;
}

/** Rows of the gaps past `cursor` (an LSN) in (_lsn, _row) order, at most `limit` (ClickhouseColdSource.byLsn). */
export type GapReader = (gaps: readonly WalGap[], cursor: number, limit: number | undefined) => Promise<DecodedRows>;

/** One table's gaps and where to read them (an as-of feed has two tables). */
export interface TableGaps {
  readonly spec: TableSpec;
  readonly gaps: readonly WalGap[];
  readonly read: GapReader;
}

/** Reads every record of `gaps` in LSN order into `push` (awaited: it may wait for room); returns the records read. */
export async function readWalGap(spec: TableSpec, gaps: readonly WalGap[], read: GapReader, push: (rec: FeedRecord) => Promise<void>, pageRows = 100_000): Promise<number> {
  let records = 0;
  for await (const rec of gapRecords(spec, gaps, read, pageRows)) {
    await push(rec);
    records++;
  }
  return records;
}

/** The gaps of several tables in LSN order, each table read page by page (readWalGap); returns the records read. */
export async function readTableGaps(tables: readonly TableGaps[], push: (rec: FeedRecord) => Promise<void>, pageRows = 100_000): Promise<number> {
  const heads = await Promise.all(
    tables.map(async (t) => {
      const it = gapRecords(t.spec, t.gaps, t.read, pageRows);
      return { it, cur: await it.next() };
    }),
  );
  let records = 0;
  for (;;) {
    let min: (typeof heads)[number] | undefined;
    for (const h of heads) if (!h.cur.done && (min === undefined || h.cur.value.lsn < (min.cur.value as FeedRecord).lsn)) min = h;
    if (min === undefined) return records;
    await push(min.cur.value as FeedRecord);
    records++;
    min.cur = await min.it.next();
  }
}

/** The records of `gaps` in LSN order, a page of `pageRows` rows read at a time, each record whole. */
async function* gapRecords(spec: TableSpec, gaps: readonly WalGap[], read: GapReader, pageRows: number): AsyncGenerator<FeedRecord> {
  if (gaps.length === 0) return;
  let cursor = 0;
  for (;;) {
    let d = await read(gaps, cursor, pageRows);
    const n = d.batch.rows;
    if (n === 0) return;
    let end = n;
    if (n === pageRows) {
      // The page may end inside its last record: keep the records before it for the next page.
      const last = d.lsn[n - 1]!;
      while (end > 0 && d.lsn[end - 1] === last) end--;
      if (end === 0) {
        // One record larger than a page: read it alone.
        d = await read(
          gaps.map((g) => ({ ...g, below: Math.min(g.below, last + 1) })),
          last - 1,
          undefined,
        );
        end = d.batch.rows;
      }
    }
    for (const rec of recordsOf(spec, d, end)) {
      yield rec;
      cursor = rec.lsn;
    }
    if (n < pageRows) return;
  }
}

/** The rows [0, end) of `d` (sorted by _lsn, _row) as one record per LSN, each with its own symbol list. */
export function* recordsOf(spec: TableSpec, d: DecodedRows, end: number): Generator<FeedRecord> {
  let from = 0;
  while (from < end) {
    const lsn = d.lsn[from]!;
    let to = from + 1;
    while (to < end && d.lsn[to] === lsn) to++;
    // A record is rows 0..k-1 once each: anything else (a row missing or twice) would be sent as it is, so refuse.
    for (let i = from; i < to; i++) {
      if (d.row[i] !== i - from) {
        throw new QueryError("FAILED_PRECONDITION", `table ${spec.name} shard ${d.shard[from]}: ClickHouse does not hold WAL record ${lsn} whole (row ${i - from} is ${d.row[i]}), so the compacted part of the WAL cannot be read back exactly; start the feed "now" or from "snapshot" and read the gap with a range query`);
      }
    }
    const local = new Map<number, number>();
    const symbols: string[] = [];
    const symbolIndex = new Uint32Array(to - from);
    for (let i = from; i < to; i++) {
      const g = d.batch.symbolIndex[i]!;
      let k = local.get(g);
      if (k === undefined) {
        k = symbols.length;
        local.set(g, k);
        symbols.push(d.batch.symbols[g]!);
      }
      symbolIndex[i - from] = k;
    }
    const sub = <T extends ValueArray>(v: T): T => v.subarray(from, to) as T;
    yield { table: spec.name, bucket: d.shard[from]!, lsn, batch: { rows: to - from, symbols, symbolIndex, ts: sub(d.batch.ts), values: d.batch.values.map(sub) } };
    from = to;
  }
}
