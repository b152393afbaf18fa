// A query part: what a coordinator asks a shard owner for (the stitched series
// of some buckets of one table over [t0, t1) plus look-behind/ahead, filtered
// by symbols and columns) and the owner's answer with each bucket's status.
// The answer is a binary frame: a JSON header and the series' typed arrays
// (no per-row conversion on either side); large frames travel in chunks.
import { CorruptMessageError } from "../../protocols/errors.js";
import { TaggedError } from "../../protocols/tagged.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { allocValueArray } from "../codec/tickbatch.js";
import { groupPartials, groupRowsOf } from "./grouping.js";
import type { GroupRows, GroupSpec } from "./grouping.js";
import { loadLastRows, seriesOfRows } from "./lastrows.js";
import type { PartRows } from "./lastrows.js";
import { loadSeries } from "./load.js";
import type { LoadRequest } from "./plan.js";
import { GroupTable } from "./partials.js";
import { orderRows } from "./order.js";
import { toSeries } from "./series.js";
import type { ColdSource, HotShard } from "./source.js";
import type { SymbolSeries } from "./series.js";

export interface PartRequest {
  /** Names this part for qcancel. */
  readonly id: string;
  readonly tenant: string;
  readonly table: string;
  readonly buckets: readonly number[];
  /** undefined = every symbol of those buckets. */
  readonly symbols: readonly string[] | undefined;
  readonly t0: number;
  readonly t1: number;
  readonly behind: number;
  readonly ahead: number;
  /** Value column names to read (spec order on the owner). */
  readonly columns: readonly string[];
  /** Wait until the shards applied this LSN (read-after-write) first. */
  readonly minLsn: number | undefined;
  /** The owner gives up after this long (the coordinator's remaining deadline). */
  readonly timeoutMs: number;
  /** A range with a limit: the owner returns only its first `n` rows in that order (the merged answer needs no more of any part). */
  readonly limit?: PartLimit;
  /** bars/groupBy: the owner answers with its group partials (`group`), not rows. */
  readonly partials?: GroupSpec;
}

export interface PartLimit {
  readonly n: number;
  readonly sort: "time" | "symbol";
  readonly desc: boolean;
}

/** How one bucket was answered. */
export interface BucketStatus {
  readonly bucket: number;
  /** live: a caught-up replica answered; lagging: answered but not caught up; missing: not answered. */
  readonly kind: "live" | "lagging" | "missing";
  /** Why it is not live (names the state and LSNs), "" when live. */
  readonly why: string;
}

export interface PartReply {
  readonly statuses: readonly BucketStatus[];
  readonly notes: readonly string[];
  readonly coldRows: number;
  /** Per symbol, sorted by symbol name; values for the requested columns only. */
  readonly series: readonly SymbolSeries[];
  /** The group partials when the request asked for them. */
  readonly group?: GroupRows;
  /** The same rows as `series`, flat (a decoded reply, a lastBy part's answer): read these to skip building series. */
  readonly rows?: PartRows;
}

interface Header {
  readonly v: 1;
  readonly statuses: readonly BucketStatus[];
  readonly notes: readonly string[];
  readonly coldRows: number;
  readonly symbols: readonly (readonly [string, number])[];
  /** Spec indices of the value columns carried. */
  readonly cols: readonly number[];
  /** An error on the owner (the part failed as a whole). */
  readonly error?: string;
  /** Group partials: symbol names, row count and field column count (sym, bucket, n and the fields follow the series). */
  readonly group?: { readonly names: readonly string[]; readonly size: number; readonly fields: number };
}

const pad8 = (n: number): number => (n + 7) & ~7;

/** The value column indices a request reads, by name; throws naming an unknown column. */
export function wantedOf(spec: TableSpec, columns: readonly string[]): boolean[] {
  const names = new Set(columns);
  for (const c of names) if (!spec.columns.some((s) => s.name === c)) throw new Error(`table ${spec.name} has no value column ${c}`);
  return spec.columns.map((c) => names.has(c.name));
}

/** The reply as one byte frame: u32 header length, header JSON padded to 8, then per column the rows of all symbols. */
export function encodePartReply(spec: TableSpec, r: PartReply): Uint8Array {
  if (r.rows !== undefined && r.group === undefined) return encodeRows(spec, r, r.rows);
  const cols = spec.columns.map((_, j) => j).filter((j) => r.series.some((s) => s.values[j] !== undefined));
  const g = r.group;
  const header: Header = {
    v: 1,
    statuses: r.statuses,
    notes: r.notes,
    coldRows: r.coldRows,
    symbols: r.series.map((s) => [s.symbol, s.n] as const),
    cols,
    ...(g === undefined ? {} : { group: { names: g.names, size: g.size, fields: g.arrs.length } }),
  };
  // One group per column: its symbols' arrays back to back, as decodePartReply reads it (a 4-byte
  // column of an odd-length series must not be padded between symbols).
  const groups: ArrayBufferView[][] = [];
  for (const key of ["ts", "lsn", "row"] as const) groups.push(r.series.map((s) => s[key].subarray(0, s.n)));
  for (const j of cols) groups.push(r.series.map((s) => s.values[j]?.subarray(0, s.n) ?? allocValueArray(spec.columns[j]!.type, s.n)));
  if (g !== undefined) for (const a of [g.sym, g.bucket, g.n, ...g.arrs]) groups.push([a]);
  return frame(header, groups);
}

/** Flat rows in the same frame as series (one column group per column, symbols back to back): no per-symbol copies. */
function encodeRows(spec: TableSpec, r: PartReply, rows: PartRows): Uint8Array {
  const cols = spec.columns.map((_, j) => j).filter((j) => rows.values[j] !== undefined);
  const header: Header = { v: 1, statuses: r.statuses, notes: r.notes, coldRows: r.coldRows, symbols: rows.symbols, cols };
  return frame(header, [[rows.ts], [rows.lsn], [rows.row], ...cols.map((j) => [rows.values[j]!])]);
}

/** A reply saying the part failed as a whole (the coordinator throws PartFailedError with `message`). */
export function encodePartError(message: string): Uint8Array {
  return frame({ v: 1, statuses: [], notes: [], coldRows: 0, symbols: [], cols: [], error: message }, []);
}

function frame(header: Header, groups: readonly (readonly ArrayBufferView[])[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = pad8(4 + json.length);
  // Each column (all symbols) starts 8-aligned so the reader can view it in place.
  let size = start;
  for (const g of groups) for (const a of g) size += a.byteLength;
  const out = new Uint8Array(pad8(size) + 8 * groups.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  let at = start;
  for (const g of groups) {
    for (const a of g) {
      out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
      at += a.byteLength;
    }
    at = pad8(at);
  }
  return out.subarray(0, at);
}

/** Decodes a reply frame for `spec`; the series are rebuilt with [t0, t1) bounds. Throws the owner's error. */
export function decodePartReply(spec: TableSpec, bytes: Uint8Array, req: Pick<PartRequest, "t0" | "t1" | "behind" | "ahead">): PartReply {
  // One aligned copy: a reassembled NATS payload may start at any byte offset.
  const buf = new Uint8Array(bytes.byteLength);
  buf.set(bytes);
  const view = new DataView(buf.buffer);
  if (buf.length < 4) throw new CorruptMessageError("query part reply", `${buf.length} bytes is shorter than its header`);
  const hlen = view.getUint32(0, true);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(4, 4 + hlen))) as Header;
  } catch (e) {
    throw new CorruptMessageError("query part reply", `header is not JSON (${(e as Error).message})`);
  }
  if (header.error !== undefined) throw new PartFailedError(header.error);
  let at = pad8(4 + hlen);
  const total = header.symbols.reduce((a, [, n]) => a + n, 0);
  const take = <T extends ValueArray>(C: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number }, count = total): T => {
    const bytesLen = count * C.BYTES_PER_ELEMENT;
    if (at + bytesLen > buf.length) throw new CorruptMessageError("query part reply", `frame ends at ${buf.length} bytes, a column needs ${at + bytesLen}`);
    const a = new C(buf.buffer, at, count);
    at = pad8(at + bytesLen);
    return a;
  };
  const ts = take(Float64Array);
  const lsn = take(Float64Array);
  const row = take(Float64Array);
  const values: (ValueArray | undefined)[] = spec.columns.map(() => undefined);
  for (const j of header.cols) {
    const type = spec.columns[j]?.type;
    if (type === undefined) throw new CorruptMessageError("query part reply", `column index ${j} is not in table ${spec.name}`);
    const C = allocValueArray(type, 0).constructor as { new (b: ArrayBuffer, o: number, n: number): ValueArray; BYTES_PER_ELEMENT: number };
    values[j] = take(C);
  }
  const hg = header.group;
  const group: GroupRows | undefined =
    hg === undefined
      ? undefined
      : { names: hg.names, size: hg.size, sym: take(Int32Array, hg.size), bucket: take(Float64Array, hg.size), n: take(Float64Array, hg.size), arrs: Array.from({ length: hg.fields }, () => take(Float64Array, hg.size)) };
  const rows: PartRows = { symbols: header.symbols, ts, lsn, row, values };
  return withRows({ statuses: header.statuses, notes: header.notes, coldRows: header.coldRows, ...(group === undefined ? {} : { group }) }, rows, req);
}

/** A reply over flat rows whose `series` are built on first read (a fan-out lastBy reads `rows` only). */
export function withRows(r: Omit<PartReply, "series" | "rows">, rows: PartRows, req: Pick<PartRequest, "t0" | "t1" | "behind" | "ahead">): PartReply {
  let series: SymbolSeries[] | undefined;
  return {
    ...r,
    rows,
    get series(): SymbolSeries[] {
      return (series ??= seriesOfRows(rows, req));
    },
  };
}

/** The owner could not run the part (its message says why). */
export class PartFailedError extends TaggedError("PartFailedError") {}

/** Splits a frame into chunks of at most `max` bytes (at least one chunk). */
export function chunks(bytes: Uint8Array, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length || at === 0; at += max) {
    out.push(bytes.subarray(at, Math.min(bytes.length, at + max)));
    if (bytes.length === 0) break;
  }
  return out;
}

/** Joins chunks back into one frame. */
export function joinChunks(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The owner's answer to a part: the stitched series of the buckets it hosts
 * (`hosted`), a status per asked bucket (missing when not hosted here, lagging
 * when not live or when minLsn was not applied within `minLsnWaitMs`).
 * Its hot rows may be views of the hot set: encode them before awaiting anything.
 */
export async function answerPart(req: PartRequest, spec: TableSpec, hosted: readonly HotShard[], cold: ColdSource | undefined, signal: AbortSignal | undefined, o: { readonly nodeId: string; readonly minLsnWaitMs: number }): Promise<PartReply> {
  const wanted = wantedOf(spec, req.columns);
  const asked = new Set(req.buckets);
  const mine = hosted.filter((h) => asked.has(h.bucket));
  const have = new Set(mine.map((h) => h.bucket));
  const statuses: BucketStatus[] = req.buckets
    .filter((b) => !have.has(b))
    .map((bucket) => ({ bucket, kind: "missing", why: `its owner ${o.nodeId} in px_assign does not host it (moving, or not started yet)` }));
  const lagged = new Set<number>();
  if (req.minLsn !== undefined) {
    const wait = Math.min(req.timeoutMs, o.minLsnWaitMs);
    await Promise.all(
      mine.map(async (h) => {
        try {
          await h.waitForLsn?.(req.minLsn!, wait);
        } catch (e) {
          lagged.add(h.bucket);
          statuses.push({ bucket: h.bucket, kind: "lagging", why: `did not apply minLsn ${req.minLsn} within ${wait} ms (${(e as Error).message})` });
        }
      }),
    );
  }
  // Status before rows: a shard that turns live after its rows were read would be reported live with the rows of its recovery.
  for (const s of await localStatuses(mine.filter((h) => !lagged.has(h.bucket)))) statuses.push(s);
  // Views: the reply's rows are encoded as soon as this resolves (src/node/qpart.ts), before the event loop turns.
  const load: LoadRequest = { tenant: req.tenant, spec, shards: mine, symbols: req.symbols, t0: req.t0, t1: req.t1, behind: req.behind, ahead: req.ahead, wanted, views: true };
  if (req.partials !== undefined) {
    const t = new GroupTable(req.partials.aggs);
    const r = await groupPartials(t, load, req.partials, cold, signal);
    return { statuses, notes: r.notes, coldRows: r.coldRows, series: [], group: groupRowsOf(t) };
  }
  // lastBy's shape from RAM: flat rows (the frame is the same; no per-symbol series built on either side).
  const last = req.limit === undefined ? loadLastRows(load) : undefined;
  if (last !== undefined) return withRows({ statuses, notes: [], coldRows: 0 }, last, req);
  const loaded = await loadSeries(load, cold, signal);
  const series = req.limit === undefined ? loaded.series : firstRows(loaded.series, req.limit, req);
  return { statuses, notes: loaded.notes, coldRows: loaded.coldRows, series };
}

/** Each series cut to its rows among the first `limit.n` of [lo, hi) in the limit's order (look-behind/ahead rows dropped). */
export function firstRows(series: readonly SymbolSeries[], limit: PartLimit, b: { readonly t0: number; readonly t1: number }): SymbolSeries[] {
  const refs = orderRows(series, limit.sort, limit.desc, limit.n);
  const counts = new Int32Array(series.length);
  for (let k = 0; k < refs.n; k++) counts[refs.sym[k]!]!++;
  return series.map((s, i) => {
    const k = counts[i]!;
    const from = limit.desc ? s.hi - k : s.lo;
    const sub = <T extends ValueArray>(v: T): T => v.subarray(from, from + k) as T;
    return toSeries(s.symbol, { n: k, ts: sub(s.ts), lsn: sub(s.lsn), row: sub(s.row), values: s.values.map((v) => (v === undefined ? undefined : sub(v))) }, b.t0, b.t1, 0, 0);
  });
}

/** Statuses of the local shards (those without a readiness probe count as live). */
export async function localStatuses(shards: readonly HotShard[]): Promise<BucketStatus[]> {
  return Promise.all(shards.map(async (h): Promise<BucketStatus> => (h.readiness === undefined ? { bucket: h.bucket, kind: "live", why: "" } : { bucket: h.bucket, ...(await h.readiness()) })));
}
