// One WAL record's output larger than a message may be (the NATS server's
// max_payload for a materialized feed, what a gRPC client takes for a
// subscription) goes out as several messages: parts of the record's update,
// each a run of its rows in order, the last one with the record's own offset.
// A part's offset (./offset.ts) is the position before the record plus the
// rows sent, so a consumer, or a writer restarted after a crash between two
// parts, resuming there gets exactly the rest of the record, however the rest
// is cut (the cuts depend on the byte limit, which can differ between nodes).
// A snapshot (a last-by board, the bars) is cut the same way; its parts'
// offsets are its own position plus the rows of the state sent.
import { sliceTable } from "../query/index.js";
import type { OutTable } from "../query/index.js";
import type { FeedOffset } from "./offset.js";
import type { FeedBatch } from "./runner.js";
import { offsetLsn } from "./tail.js";
import type { FeedTail } from "./tail.js";

/**
 * `b` as parts of at most `maxBytes` each by `bytesOf`: cut where the mean
 * row size says, then halved where a part is still over. A batch that fits, or
 * a single row, comes back as it is, for the caller to refuse if it is still
 * too large.
 */
export function splitBatch(b: FeedBatch, maxBytes: number, bytesOf: (t: OutTable) => number): FeedBatch[] {
  const rows = b.table.rows;
  const prior = b.prior;
  if ((b.kind === "update" && prior === undefined) || rows <= 1) return [b];
  const whole = bytesOf(b.table);
  if (whole <= maxBytes) return [b];
  const ranges: [from: number, to: number, table: OutTable][] = [];
  const cut = (from: number, to: number, t: OutTable): void => {
    if (to - from <= 1 || bytesOf(t) <= maxBytes) {
      ranges.push([from, to, t]);
      return;
    }
    const mid = (from + to) >>> 1;
    cut(from, mid, sliceTable(b.table, from, mid));
    cut(mid, to, sliceTable(b.table, mid, to));
  };
  // A tenth under the mean's guess: rows differ in size (symbols), and a part over the limit costs another cut.
  const per = Math.max(1, Math.floor(((rows * maxBytes) / whole) * 0.9));
  for (let from = 0; from < rows; from += per) {
    const to = Math.min(rows, from + per);
    cut(from, to, sliceTable(b.table, from, to));
  }
  const first = b.firstRow ?? 0;
  const totalRows = first + rows;
  const lsn = offsetLsn(b.offset);
  const at = (end: number): FeedOffset =>
    b.kind === "snapshot" ? { feed: b.offset.feed, lsn: b.offset.lsn, part: { lsn, rows: end, snapshot: true } } : { feed: b.offset.feed, lsn: prior!.lsn, part: { lsn, rows: end } };
  return ranges.map(([from, to, table], i): FeedBatch => {
    if (i === ranges.length - 1) return { ...b, table, firstRow: first + from, totalRows };
    return { kind: b.kind, table, offset: at(first + to), ...(prior === undefined ? {} : { prior }), firstRow: first + from, totalRows };
  });
}

/**
 * `b` less the rows of its record the subject already holds when its last
 * message is a part of that record (a writer restarted, or another writer,
 * between two parts): the rest, to be cut again.
 */
export function afterTail(b: FeedBatch, tail: FeedTail): FeedBatch {
  const major = 2 * offsetLsn(b.offset) + (b.kind === "snapshot" ? 0.5 : -0.5);
  if ((b.kind === "update" && b.prior === undefined) || tail.place[0] !== major) return b;
  const first = b.firstRow ?? 0;
  const skip = Math.min(b.table.rows, tail.place[1] - first);
  return skip <= 0 ? b : { ...b, table: sliceTable(b.table, skip, b.table.rows), firstRow: first + skip };
}

/** The rows header of a message: "<first>-<end>/<total>" of its record's output (or snapshot) when it is cut over several messages, else undefined. */
export function rowsHeader(b: FeedBatch): string | undefined {
  const first = b.firstRow ?? 0;
  if (b.offset.part === undefined && first === 0) return undefined;
  return `${first}-${first + b.table.rows}/${b.totalRows ?? first + b.table.rows}`;
}
