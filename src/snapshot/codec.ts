// Snapshot data: a shard's hot set (HotTableColumns) as a sequence of
// length-prefixed Arrow IPC chunks (rows in symbol, time order), then one chunk
// of seam-cache rows. Pure: bytes in, bytes out. The manifest (protocols) names
// the chunk sizes and the SHA-256 that a loader checks before trusting a byte.
import { createHash } from "node:crypto";
import type { SnapshotManifest } from "../../protocols/codec.js";
import { columnDefault, specAtVersion } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch, BatchRejected } from "../codec/arrow.js";
import { encodeTickIpc } from "../codec/ipc.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import type { HotTableColumns, SeamRow, SeriesColumns } from "../hotset/index.js";
import { columnarParts, decodeColumnar, seriesOfChunks, SnapshotCorruptError } from "./columnar.js";
import type { Chunk, ColumnarExpect } from "./columnar.js";
import { PackedReader, packFrame, packFrameAsync, unpackChunks } from "./packed.js";

/**
 * Written now: 3 (packed.ts: format 2's chunks, delta-encoded and compressed).
 * Formats 2 (columnar.ts) and 1 (Arrow IPC chunks, release 0.1) still load.
 */
export const SNAPSHOT_DATA_FORMAT = 3;
/** The data formats a writer may choose (tests and benchmarks write 2 to compare and to prove old snapshots load). */
export type WritableDataFormat = 2 | 3;
const MAX_CHUNK_ROWS = 1 << 20;

export { SnapshotCorruptError };

const snapSpecs = new WeakMap<TableSpec, TableSpec>();

/** The table spec plus _lsn and _row, as the snapshot chunks store them. */
function snapshotSpec(spec: TableSpec): TableSpec {
  let s = snapSpecs.get(spec);
  if (!s) {
    s = {
      ...spec,
      maxBatchRows: MAX_CHUNK_ROWS,
      columns: [{ name: "_lsn", type: "int64", allowNonFinite: false }, { name: "_row", type: "int32", allowNonFinite: false }, ...spec.columns.map((c) => ({ ...c, allowNonFinite: true }))],
    };
    snapSpecs.set(spec, s);
  }
  return s;
}

export interface EncodedSnapshot {
  readonly format: WritableDataFormat;
  readonly data: Uint8Array;
  readonly sha256: string;
  readonly chunkRows: number[];
  readonly seamRows: number;
  readonly rows: number;
}

function frame(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, at);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

export function encodeSnapshot(spec: TableSpec, cols: HotTableColumns, chunkRows = MAX_CHUNK_ROWS, format: WritableDataFormat = SNAPSHOT_DATA_FORMAT): EncodedSnapshot {
  const framed: Uint8Array[] = [];
  const parts = snapshotParts(spec, cols, chunkRows, format);
  let r = parts.next();
  while (r.done !== true) {
    framed.push(r.value);
    r = parts.next();
  }
  const data = concat(framed);
  return { format, data, sha256: sha256Hex(data), ...r.value };
}

/** What a snapshot's data holds besides its bytes (the manifest's figures). */
export interface SnapshotSummary {
  readonly chunkRows: number[];
  readonly seamRows: number;
  readonly rows: number;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The snapshot data as consecutive framed chunks (their concatenation is the
 * data object), so a writer can hash and stream them while the next one is
 * encoded (src/snapshot/worker.ts does it in a worker thread).
 */
export function* snapshotParts(spec: TableSpec, cols: HotTableColumns, chunkRows = MAX_CHUNK_ROWS, format: WritableDataFormat = SNAPSHOT_DATA_FORMAT): Generator<Uint8Array, SnapshotSummary, undefined> {
  const frames = columnarParts(spec.columns, cols, chunkRows);
  let r = frames.next();
  while (r.done !== true) {
    yield format === 3 ? packFrame(spec.columns, r.value) : r.value;
    r = frames.next();
  }
  return r.value;
}

/**
 * Frames compressed at once (on libuv's thread pool) while the next is
 * encoded. One keeps this reference encoder's output in step with the
 * snapshot thread's (src/node/shard/snapshotworker.ts), which tests compare it
 * with byte for byte.
 */
const PACK_AHEAD = 1;

/**
 * snapshotParts in format 3 with the compression off this thread and on every
 * core: the same bytes, in the same order (the reference the snapshot thread's
 * output is tested against; nodes write through the thread).
 */
export async function* snapshotPartsAsync(spec: TableSpec, cols: HotTableColumns, chunkRows = MAX_CHUNK_ROWS): AsyncGenerator<Uint8Array, SnapshotSummary, undefined> {
  const frames = columnarParts(spec.columns, cols, chunkRows);
  const ahead: Promise<Uint8Array>[] = [];
  let r = frames.next();
  while (r.done !== true) {
    const packed = packFrameAsync(spec.columns, r.value);
    // A failure surfaces when its turn comes to be yielded.
    packed.catch(() => {});
    ahead.push(packed);
    if (ahead.length >= PACK_AHEAD) yield await ahead.shift()!;
    r = frames.next();
  }
  for (const p of ahead) yield await p;
  return r.value;
}

/** Format 1, as release 0.1 wrote it: kept so the test can prove such snapshots still load. */
export function* snapshotPartsV1(spec: TableSpec, cols: HotTableColumns, chunkRows = MAX_CHUNK_ROWS): Generator<Uint8Array, SnapshotSummary, undefined> {
  const sspec = snapshotSpec(spec);
  const nv = spec.columns.length;
  const parts: Uint8Array[] = [];
  const sizes: number[] = [];
  let rows = 0;
  let done = 0;
  // Pending (symbol, from, to) runs of the chunk being filled.
  let runs: { sym: number; s: SeriesColumns; from: number; to: number }[] = [];
  let pending = 0;
  const flush = (): void => {
    if (pending === 0) return;
    const names: string[] = [];
    const symbolIndex = new Uint32Array(pending);
    const ts = new Float64Array(pending);
    const lsn = new Float64Array(pending);
    const row = new Int32Array(pending);
    const values = spec.columns.map((c) => allocValueArray(c.type, pending));
    let at = 0;
    for (const r of runs) {
      const local = names.length;
      names.push(cols.symbols[r.sym]!);
      const n = r.to - r.from;
      symbolIndex.fill(local, at, at + n);
      ts.set(r.s.tsMicros.subarray(r.from, r.to), at);
      lsn.set(r.s.lsn.subarray(r.from, r.to), at);
      row.set(r.s.rowInRecord.subarray(r.from, r.to), at);
      for (let v = 0; v < nv; v++) values[v]!.set(r.s.values[v]!.subarray(r.from, r.to) as never, at);
      at += n;
    }
    parts.push(encodeTickIpc(sspec, { rows: pending, symbols: names, symbolIndex, ts, values: [lsn, row, ...values] }));
    sizes.push(pending);
    runs = [];
    pending = 0;
  };
  for (let sym = 0; sym < cols.series.length; sym++) {
    const s = cols.series[sym]!;
    let from = 0;
    const len = s.tsMicros.length;
    while (from < len) {
      const take = Math.min(len - from, chunkRows - pending);
      runs.push({ sym, s, from, to: from + take });
      pending += take;
      rows += take;
      from += take;
      if (pending === chunkRows) {
        flush();
        // Each chunk goes out as soon as it is encoded: the writer streams it while the next one is built.
        for (; done < parts.length; done++) yield frame([parts[done]!]);
      }
    }
  }
  flush();
  for (; done < parts.length; done++) yield frame([parts[done]!]);
  // Seam cache rows: one per symbol that has one.
  const seam = cols.series.map((s, sym) => ({ sym, row: s.seam })).filter((x): x is { sym: number; row: SeamRow } => x.row !== null);
  const sb: TickBatch = {
    rows: seam.length,
    symbols: seam.map((x) => cols.symbols[x.sym]!),
    symbolIndex: Uint32Array.from(seam, (_, i) => i),
    ts: Float64Array.from(seam, (x) => x.row.tsMicros),
    values: [
      Float64Array.from(seam, (x) => x.row.lsn),
      Int32Array.from(seam, (x) => x.row.rowInRecord),
      ...spec.columns.map((c, v) => {
        const a = allocValueArray(c.type, seam.length);
        seam.forEach((x, i) => (a[i] = x.row.values[v]!));
        return a;
      }),
    ],
  };
  yield frame([encodeTickIpc(sspec, sb)]);
  return { chunkRows: sizes, seamRows: seam.length, rows };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Splits the framed chunks, checking every length against the bytes present. */
function unframe(data: Uint8Array, expected: number, where: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.length) {
    if (at + 4 > data.length) throw new SnapshotCorruptError(`${where}: truncated chunk header at byte ${at}`);
    const len = dv.getUint32(at, true);
    if (at + 4 + len > data.length) throw new SnapshotCorruptError(`${where}: chunk at byte ${at} claims ${len} bytes, only ${data.length - at - 4} remain`);
    out.push(data.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (out.length !== expected) throw new SnapshotCorruptError(`${where}: ${out.length} chunks, the manifest says ${expected}`);
  return out;
}

const whereOf = (m: SnapshotManifest): string => `snapshot ${m.tenant}/${m.table}/${m.bucket}@${m.lsn}`;

/**
 * A reader that decodes the manifest's data while it arrives (format 3 only;
 * undefined otherwise, or for a schema newer than `spec`: decodeSnapshot then
 * reads, or refuses, the whole object).
 */
export function snapshotDataReader(spec: TableSpec, manifest: SnapshotManifest): PackedReader | undefined {
  if (manifest.dataFormat !== 3 || manifest.schemaVersion > spec.version) return undefined;
  return new PackedReader(snapshotSpec(specAtVersion(spec, manifest.schemaVersion)).columns.slice(2), whereOf(manifest), Number(manifest.dataBytes));
}

/** What a loader received is what the manifest describes, in a format and schema this node reads. */
function checkReceived(spec: TableSpec, manifest: SnapshotManifest, bytes: number, sha256: string, where: string): void {
  if (![1, 2, 3].includes(manifest.dataFormat)) throw new SnapshotCorruptError(`${where}: data format ${manifest.dataFormat}, this reader knows 1, 2 and 3`);
  if (manifest.schemaVersion > spec.version) throw new SnapshotCorruptError(`${where}: written for schema version ${manifest.schemaVersion}, newer than this node's ${spec.version}`);
  if (bytes !== Number(manifest.dataBytes)) throw new SnapshotCorruptError(`${where}: ${bytes} bytes, the manifest says ${manifest.dataBytes}`);
  if (sha256 !== manifest.dataSha256) throw new SnapshotCorruptError(`${where}: SHA-256 mismatch; the data object is corrupt`);
}

/**
 * A format-3 snapshot read as it streamed in (snapshotDataReader): `received`
 * is the count and SHA-256 of the bytes that arrived, checked against the
 * manifest before the reader's chunks are asked for and assembled.
 */
export async function decodeStreamed(spec: TableSpec, manifest: SnapshotManifest, received: { readonly bytes: number; readonly sha256: string }, reader: PackedReader): Promise<HotTableColumns> {
  const where = whereOf(manifest);
  checkReceived(spec, manifest, received.bytes, received.sha256, where);
  return decodeFormat3(spec, manifest, await reader.finish(), where);
}

/** Head of the table a manifest describes, and the figures its chunks must match. */
function headOf(manifest: SnapshotManifest): { head: Omit<HotTableColumns, "series">; expect: ColumnarExpect } {
  const symbols = manifest.symbols?.symbols ?? [];
  return {
    head: { table: manifest.table, appliedLsn: Number(manifest.lsn), persistedLsn: Number(manifest.persistedLsn), horizonMicros: Number(manifest.horizonMicros), symbols },
    expect: { symbols: symbols.length, chunkRows: manifest.chunkRows.map(Number), seamRows: Number(manifest.seamRows), rows: Number(manifest.rows) },
  };
}

/** Format 3's unpacked chunks as the table (columns added since the snapshot read as their defaults). */
function decodeFormat3(spec: TableSpec, manifest: SnapshotManifest, chunks: readonly Chunk[], where: string): HotTableColumns {
  const { head, expect } = headOf(manifest);
  const stored = snapshotSpec(specAtVersion(spec, manifest.schemaVersion)).columns.slice(2);
  return { ...head, series: seriesOfChunks(stored, spec.columns, spec.columns.map(columnDefault), chunks, expect, where) };
}

/**
 * Data bytes + manifest -> HotTableColumns. Throws SnapshotCorruptError on any
 * mismatch. `sha256` (hex) is the data's hash when the reader already took it;
 * otherwise it is taken here.
 */
export function decodeSnapshot(spec: TableSpec, manifest: SnapshotManifest, data: Uint8Array, sha256: string = sha256Hex(data)): HotTableColumns {
  const where = whereOf(manifest);
  checkReceived(spec, manifest, data.length, sha256, where);
  // A snapshot of an older version holds a prefix of the columns; the ones added since read as their defaults.
  const sspec = snapshotSpec(specAtVersion(spec, manifest.schemaVersion));
  const stored = sspec.columns.length - 2;
  const defaults = spec.columns.map(columnDefault);
  const { head, expect } = headOf(manifest);
  const symbols = head.symbols;
  if (manifest.dataFormat === 2) return { ...head, series: decodeColumnar(sspec.columns.slice(2), spec.columns, defaults, data, expect, where) };
  if (manifest.dataFormat === 3) return decodeFormat3(spec, manifest, unpackChunks(sspec.columns.slice(2), data, where), where);
  const idOf = new Map(symbols.map((s, i) => [s, i]));
  const chunks = unframe(data, manifest.chunkRows.length + 1, where);
  let batches: TickBatch[];
  try {
    batches = chunks.map((c) => decodeTickBatch(sspec, c, where));
  } catch (e) {
    if (e instanceof BatchRejected) throw new SnapshotCorruptError(e.message);
    throw e;
  }
  const seamBatch = batches.pop()!;
  // Count rows per symbol, then copy each symbol's runs into its own arrays.
  const counts = new Int32Array(symbols.length);
  const symIds = batches.map((b, bi) => {
    if (b.rows !== Number(manifest.chunkRows[bi])) throw new SnapshotCorruptError(`${where}: chunk ${bi} has ${b.rows} rows, the manifest says ${manifest.chunkRows[bi]}`);
    return b.symbols.map((s) => {
      const id = idOf.get(s);
      if (id === undefined) throw new SnapshotCorruptError(`${where}: symbol ${s} is not in the manifest's dictionary`);
      return id;
    });
  });
  batches.forEach((b, bi) => {
    for (let i = 0; i < b.rows; i++) counts[symIds[bi]![b.symbolIndex[i]!]!]!++;
  });
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== Number(manifest.rows)) throw new SnapshotCorruptError(`${where}: ${total} rows, the manifest says ${manifest.rows}`);
  const series = symbols.map((_, id) => ({
    tsMicros: new Float64Array(counts[id]!),
    lsn: new Float64Array(counts[id]!),
    rowInRecord: new Int32Array(counts[id]!),
    values: spec.columns.map((c, v) => (v < stored ? allocValueArray(c.type, counts[id]!) : allocValueArray(c.type, counts[id]!).fill(defaults[v]!))) as ValueArray[],
    seam: null as SeamRow | null,
  }));
  const filled = new Int32Array(symbols.length);
  batches.forEach((b, bi) => {
    for (let i = 0; i < b.rows; i++) {
      const id = symIds[bi]![b.symbolIndex[i]!]!;
      const s = series[id]!;
      const at = filled[id]!++;
      s.tsMicros[at] = b.ts[i]!;
      s.lsn[at] = b.values[0]![i]!;
      s.rowInRecord[at] = b.values[1]![i]!;
      for (let v = 0; v < stored; v++) s.values[v]![at] = b.values[v + 2]![i]!;
    }
  });
  if (seamBatch.rows !== Number(manifest.seamRows)) throw new SnapshotCorruptError(`${where}: ${seamBatch.rows} seam rows, the manifest says ${manifest.seamRows}`);
  for (let i = 0; i < seamBatch.rows; i++) {
    const id = idOf.get(seamBatch.symbols[seamBatch.symbolIndex[i]!]!);
    if (id === undefined) throw new SnapshotCorruptError(`${where}: seam symbol is not in the dictionary`);
    series[id]!.seam = {
      tsMicros: seamBatch.ts[i]!,
      lsn: seamBatch.values[0]![i]!,
      rowInRecord: seamBatch.values[1]![i]!,
      values: spec.columns.map((_, v) => (v < stored ? seamBatch.values[v + 2]![i]! : defaults[v]!)),
    };
  }
  return {
    table: manifest.table,
    appliedLsn: Number(manifest.lsn),
    persistedLsn: Number(manifest.persistedLsn),
    horizonMicros: Number(manifest.horizonMicros),
    symbols,
    series,
  };
}
