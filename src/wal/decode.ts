// Decoding a WAL record once per node: a shard and its sink both read every
// record of the shard from the WAL; whichever sees a record first decodes it
// and leaves it here, the other takes it. Bounded: a record the other side does
// not take soon (one of them far behind) is dropped and decoded again later.
import { decodeWalRecord } from "../../protocols/codec.js";
import { columnDefault, specAtVersion } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../codec/arrow.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { TickBatch } from "../codec/tickbatch.js";
import { TaggedError } from "../../protocols/tagged.js";
import { tryDecodeWalPayload } from "./fastdecode.js";

/** A WAL record's envelope facts and its ticks. */
export interface DecodedRecord {
  readonly schemaVersion: number;
  readonly batch: TickBatch;
  readonly payloadBytes: number;
  readonly minTsMicros: number;
  readonly maxTsMicros: number;
}

/** A WAL record written for a newer version of the table spec than this node serves. */
export class WalSchemaVersionError extends TaggedError("WalSchemaVersionError") {}

/** `batch` of an older version's columns with the columns added since, every row at the column's default. */
function withAddedColumns(spec: TableSpec, batch: TickBatch): TickBatch {
  const have = batch.values.length;
  if (have === spec.columns.length) return batch;
  const added = spec.columns.slice(have).map((c) => allocValueArray(c.type, batch.rows).fill(columnDefault(c)));
  return { ...batch, values: [...batch.values, ...added] };
}

/** PX_WAL_FAST_DECODE=off decodes every WAL record with the general decoder (to compare; the result is the same). */
const useFastDecode = process.env.PX_WAL_FAST_DECODE !== "off";

/**
 * Envelope and Arrow payload of a WAL record, as `spec`'s ticks. A record of
 * an older version is decoded with that version's columns and the columns
 * added since read as their defaults. Throws `WalSchemaVersionError` for a
 * record of a newer version (this node has not seen that spec yet), else the
 * codec's errors.
 */
export function decodeWalEntry(spec: TableSpec, lsn: number, data: Uint8Array): DecodedRecord {
  const rec = decodeWalRecord(data);
  if (rec.schemaVersion > spec.version) {
    throw new WalSchemaVersionError(
      `WAL record at LSN ${lsn} was written for version ${rec.schemaVersion} of table ${spec.name}; this node serves version ${spec.version}; the shard restarts with the new spec once this node's catalog has it`,
    );
  }
  const asWritten = specAtVersion(spec, rec.schemaVersion);
  // The gateway's layout is read directly (./fastdecode.ts); anything else, and every error, by the general decoder.
  const ticks = (useFastDecode ? tryDecodeWalPayload(asWritten, rec.payload) : undefined) ?? decodeTickBatch(asWritten, rec.payload, `WAL record at LSN ${lsn}`);
  const batch = withAddedColumns(spec, ticks);
  let minTs = Number(rec.minTsMicros);
  let maxTs = Number(rec.maxTsMicros);
  if (batch.rows > 0 && !(minTs <= maxTs && maxTs > 0)) {
    // Envelope without bounds: compute them.
    minTs = Infinity;
    maxTs = -Infinity;
    for (let i = 0; i < batch.rows; i++) {
      const t = batch.ts[i]!;
      if (t < minTs) minTs = t;
      if (t > maxTs) maxTs = t;
    }
  }
  return { schemaVersion: rec.schemaVersion, batch, payloadBytes: rec.payload.length, minTsMicros: minTs, maxTsMicros: maxTs };
}

/**
 * LSNs of a shard's WAL records an operator skipped (`pxctl shard skip-record`,
 * ./skips.ts): records that cannot be decoded, read as records without rows so
 * the shard and its sink go on past them.
 */
export type SkippedLsns = ReadonlySet<number>;

/** What a skipped record reads as: no rows, this spec's columns. */
export function skippedRecord(spec: TableSpec): DecodedRecord {
  const batch: TickBatch = { rows: 0, symbols: [], symbolIndex: new Uint32Array(0), ts: new Float64Array(0), values: spec.columns.map((c) => allocValueArray(c.type, 0)) };
  return { schemaVersion: spec.version, batch, payloadBytes: 0, minTsMicros: 0, maxTsMicros: 0 };
}

/** Decoded records of one shard waiting for the other reader, by LSN (oldest dropped past `cap`). */
export class DecodedRecordCache {
  private readonly entries = new Map<number, DecodedRecord>();
  hits = 0;

  constructor(private readonly cap = 256) {}

  get size(): number {
    return this.entries.size;
  }

  /** The record if the other reader left it (it is removed: each side takes it once). */
  take(lsn: number): DecodedRecord | undefined {
    const d = this.entries.get(lsn);
    if (d !== undefined) {
      this.entries.delete(lsn);
      this.hits++;
    }
    return d;
  }

  put(lsn: number, d: DecodedRecord): void {
    this.entries.set(lsn, d);
    if (this.entries.size > this.cap) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** Takes the record, or decodes it and leaves it for the other reader. */
  takeOrDecode(spec: TableSpec, lsn: number, data: Uint8Array): DecodedRecord {
    const hit = this.take(lsn);
    if (hit !== undefined) return hit;
    const d = decodeWalEntry(spec, lsn, data);
    this.put(lsn, d);
    return d;
  }
}
