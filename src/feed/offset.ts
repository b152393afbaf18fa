// Feed offsets: the per-shard LSN vector an output batch covers. Entry
// "<table>/<bucket>" = L means every WAL record of that shard with LSN <= L is
// reflected in the output up to here. A consumer hands the offset back (as the
// opaque token) to resume exactly after it: no gap, no duplicate. A record's
// output too large for one message is cut into parts (./parts.ts): a part's
// offset is the position before its record with `part` saying how many of the
// record's output rows were sent, so resuming there sends the rest of them; a
// snapshot's part is the snapshot's own position with the rows of the state
// sent (`part.snapshot`).
import { QueryError } from "../../protocols/errors.js";
import type { TableSpec } from "../../protocols/tablespec.js";

export interface FeedOffset {
  /** The feed's fingerprint (see FeedPlan). */
  readonly feed: string;
  readonly lsn: Readonly<Record<string, number>>;
  /** Set on the offset of a part of a record's output: the record's LSN and how many of its output rows are sent (0 < rows < all). */
  readonly part?: RecordPart;
}

/** How far into one record's output (or into the snapshot taken right after it) a part offset is. */
export interface RecordPart {
  readonly lsn: number;
  readonly rows: number;
  /** A part of the snapshot taken at `lsn`, not of the record's update. */
  readonly snapshot?: boolean;
}

export const shardKey = (table: string, bucket: number): string => `${table}/${bucket}`;

/** Every shard of `tables` at `lsn`. */
export function uniformOffset(feed: string, tables: readonly TableSpec[], lsn: number): FeedOffset {
  const v: Record<string, number> = {};
  for (const t of tables) for (let b = 0; b < t.shards; b++) v[shardKey(t.name, b)] = lsn;
  return { feed, lsn: v };
}

/** True when the record of (table, bucket) at `lsn` is already covered by `o`. */
export const covers = (o: FeedOffset, table: string, bucket: number, lsn: number): boolean => lsn <= (o.lsn[shardKey(table, bucket)] ?? 0);

/** The first WAL sequence a reader resuming at `o` must read (the lowest entry + 1). */
export function resumeSeq(o: FeedOffset): number {
  const v = Object.values(o.lsn);
  return v.length === 0 ? 1 : Math.min(...v) + 1;
}

/** The offset as a compact token (what clients store and send back). */
export const encodeOffset = (o: FeedOffset): string => Buffer.from(JSON.stringify(o.part === undefined ? { v: 1, f: o.feed, l: o.lsn } : { v: 1, f: o.feed, l: o.lsn, p: o.part.snapshot === true ? [o.part.lsn, o.part.rows, 1] : [o.part.lsn, o.part.rows] })).toString("base64url");

/** Parses a token for the feed `fingerprint` with shards `tables`; refuses (INVALID_ARGUMENT) a malformed token or one of another feed. */
export function decodeOffset(token: string, fingerprint: string, tables: readonly TableSpec[]): FeedOffset {
  let j: { v?: unknown; f?: unknown; l?: unknown; p?: unknown };
  try {
    j = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as typeof j;
  } catch {
    throw new QueryError("INVALID_ARGUMENT", `subscription field from.offset: "${token.slice(0, 40)}" is not a feed offset; pass the offset token of a batch this feed sent`);
  }
  if (j.v !== 1 || typeof j.f !== "string" || typeof j.l !== "object" || j.l === null) {
    throw new QueryError("INVALID_ARGUMENT", `subscription field from.offset: the token is not a version 1 feed offset; pass the offset token of a batch this feed sent`);
  }
  if (j.f !== fingerprint) {
    throw new QueryError("INVALID_ARGUMENT", `subscription field from.offset: the offset belongs to feed ${j.f}, not to this feed (${fingerprint}); resume a feed only with its own offsets, or start it "now" or from "snapshot"`);
  }
  const lsn: Record<string, number> = {};
  for (const t of tables) {
    for (let b = 0; b < t.shards; b++) {
      const k = shardKey(t.name, b);
      const v = (j.l as Record<string, unknown>)[k];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new QueryError("INVALID_ARGUMENT", `subscription field from.offset: shard ${k} has no LSN in the offset (the table's shard count changed?); start the feed "now" or from "snapshot"`);
      lsn[k] = v;
    }
  }
  if (j.p === undefined) return { feed: fingerprint, lsn };
  const [pl, pr, ps, ...more] = Array.isArray(j.p) ? (j.p as unknown[]) : [];
  const isCount = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x > 0;
  const snapshot = ps === 1;
  // An update's part continues a record after the offset's position (its LSN lies beyond every shard's); a snapshot's is at it.
  if (!isCount(pl) || !isCount(pr) || !(ps === undefined || snapshot) || more.length > 0 || !(snapshot ? Math.max(0, ...Object.values(lsn)) === pl : Object.values(lsn).every((v) => v < pl))) {
    throw new QueryError(
      "INVALID_ARGUMENT",
      `subscription field from.offset: the token's part ${JSON.stringify(j.p)} is not [record LSN past the offset, rows sent > 0] nor [the offset's LSN, rows sent > 0, 1] (a snapshot's); pass the offset token of a message this feed sent`,
    );
  }
  return { feed: fingerprint, lsn, part: snapshot ? { lsn: pl, rows: pr, snapshot } : { lsn: pl, rows: pr } };
}
